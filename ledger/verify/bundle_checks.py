"""Bundle checks 1 (manifest), 2-5 and 10 (the entries, through the shared engine) and 9 (media)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from domain.context import DomainConfig
from domain.errors import LedgerError
from domain.events import declared
from ledger.envelope.dsse import PAYLOAD_TYPE, REGISTRY_CASE_ID, UnverifiedEnvelope, pae, parse_envelope
from ledger.verify.bundle_files import BundleFiles, ManifestFile
from ledger.verify.bundle_format import ENVELOPES, HEX64, LEAVES, MANIFEST, MEDIA, file_sha256, member_path
from ledger.verify.bundle_model import BundleVerification, VerifyOptions
from ledger.verify.engine import Entry, EntryChecker, _verify_one, check_entries, public_keys_in

# --- step 1: the manifest -----------------------------------------------------------------------


def check_manifest(v: BundleVerification, files: BundleFiles) -> None:
    listed: dict[str, ManifestFile] = {}
    for item in v.manifest.files:
        if item.path in listed or item.path == MANIFEST:
            v.find(
                "MANIFEST_MISMATCH", 1, "the manifest lists this file twice or lists itself", path=item.path
            )
        listed[item.path] = item
    for name in files.duplicates:
        v.find("MANIFEST_MISMATCH", 1, "the zip holds two members with this name", path=name)
    for path, item in listed.items():
        member = files.members.get(path)
        if member is None:
            v.find("MANIFEST_MISMATCH", 1, "a listed file is missing from the bundle", path=path)
        elif member.sha256 != item.sha256 or member.size != item.size:
            v.find(
                "MANIFEST_MISMATCH",
                1,
                "a listed file has changed",
                path=path,
                listed_sha256=item.sha256,
                actual_sha256=member.sha256,
                listed_size=item.size,
                actual_size=member.size,
            )
    for name, member in files.members.items():
        if name != MANIFEST and name not in listed:
            v.find("MANIFEST_MISMATCH", 1, "the bundle holds a file the manifest does not list", path=name)
        if member.error is not None and name != MANIFEST:
            v.find("MANIFEST_MISMATCH", 1, f"a file {member.error}", path=name)
    v.counts[1] = f"{len(listed)} listed files checked against their SHA-256 and size"


# --- steps 2-5 and 10: the entries ----------------------------------------------------------------


def collect_entries(v: BundleVerification, files: BundleFiles) -> list[Entry]:
    entries = []
    envelopes = set(files.indexes(ENVELOPES))
    for index in sorted(envelopes):
        raw = files.small(member_path(ENVELOPES, index))
        leaf = files.small(member_path(LEAVES, index))
        if leaf is None:
            v.find("LEAF_MISMATCH", 5, "the bundle holds no leaf for this envelope", leaf_index=index)
        entries.append(Entry(index, raw if raw is not None else b"", leaf))
    for index in files.indexes(LEAVES):
        if index not in envelopes:
            v.find("LEAF_MISMATCH", 5, "a leaf without its envelope", leaf_index=index)
    return entries


def check_case(v: BundleVerification, checker: EntryChecker) -> None:
    case_id = v.manifest.case_id
    for item in checker.checked:
        if item.case_id not in (None, case_id, REGISTRY_CASE_ID):
            v.find(
                "BINDING_MISMATCH",
                4,
                "an envelope of another case is in this case's bundle",
                leaf_index=item.leaf_index,
                case_id=item.case_id,
                seq=item.seq,
            )
    events = [c for c in checker.checked if c.case_id == case_id]
    if not events:
        v.find("SEQ_GAP", 4, "the bundle holds no event of its case", case_id=case_id)
    elif (
        v.manifest.case_events is not None
        and all(c.case_id is not None for c in checker.checked)  # an unparseable entry is already a finding
        and max(c.seq or 0 for c in events) != v.manifest.case_events
    ):
        v.find(
            "SEQ_GAP",
            4,
            "the case's last seq differs from the number of events the manifest announces",
            case_id=case_id,
            announced=v.manifest.case_events,
        )
    v.counts[2] = f"{len(checker.checked)} envelopes parsed"
    v.counts[3] = (
        f"{sum(1 for c in checker.checked if c.actor is not None)} signers identified in the registry"
    )
    v.counts[4] = f"seq 1..{len(events)} of case {case_id}, each bound to {v.manifest.origin}"
    v.counts[5] = f"{len(checker.checked)} leaves rebuilt from their envelopes"
    v.counts[10] = f"{len(events)} case events replayed through the case rules"


def _loosely(raw: bytes) -> tuple[str, bytes, bytes, Any] | None:
    """(keyid, signature, payload, statement) read without the strict checks, or None. For an
    envelope that parses strictly these are exactly the strict parser's values."""
    try:
        data = json.loads(raw)
        signature = data["signatures"][0]
        keyid, sig = signature["keyid"], base64.b64decode(signature["sig"])
        payload = base64.b64decode(data["payload"])
        statement = json.loads(payload)
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return (keyid, sig, payload, statement) if isinstance(keyid, str) else None


def _loose_key(statement: Any) -> tuple[str, bytes] | None:
    """(key id, public key) of a KeyRegistered statement whose key id is its key's SHA-256."""
    if not isinstance(statement, dict) or statement.get("type") != "KeyRegistered":
        return None
    body = statement.get("body")
    key_id = body.get("key_id") if isinstance(body, dict) else None
    try:
        public = base64.b64decode(body["public_key"], validate=True)  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None
    return (key_id, public) if isinstance(key_id, str) and hashlib.sha256(public).hexdigest() == key_id else None


def signature_verdicts(files: BundleFiles) -> dict[int, bool]:
    """Leaf index -> signature verdict of every envelope of the bundle, with the keys registered
    anywhere in it (run by a worker while the main process parses strictly and replays).

    A key id is the SHA-256 of its key, so whichever envelope registers it, the key is the same
    bytes; for every envelope that parses strictly the verdict is the one ``check_entries`` gives."""
    read = {}
    for index in files.indexes(ENVELOPES):
        loose = _loosely(files.small(member_path(ENVELOPES, index)) or b"")
        if loose is not None:
            read[index] = loose
    keys = dict(k for _, _, _, statement in read.values() if (k := _loose_key(statement)) is not None)
    return {
        index: _verify_one((keys[keyid], sig, pae(PAYLOAD_TYPE, payload)))
        for index, (keyid, sig, payload, _) in read.items()
        if keyid in keys
    }


def _speculative(entries: list[Entry], verdicts: Callable[[], dict[int, bool]], **kwargs: Any) -> EntryChecker:
    """Replay with every signature assumed valid while a worker checks them for real
    (``verdicts``: waits for its answer, raising its exception if it failed).

    When every parsed entry's signature has a verdict (its key is registered in the bundle) and
    verifies, as in a clean bundle, the result is exactly what ``check_entries`` would give;
    otherwise the entries are checked again the ordinary way."""
    parsed: dict[int, UnverifiedEnvelope] = {}
    for entry in entries:
        try:
            parsed[entry.leaf_index] = parse_envelope(entry.envelope)
        except LedgerError:
            continue
    checker = EntryChecker(**kwargs, signature_verdicts=dict.fromkeys(parsed, True))
    for entry in entries:
        checker.check(entry, parsed.get(entry.leaf_index))
    keys = public_keys_in(parsed.values())
    got = verdicts()
    if all(env.keyid in keys and got.get(index) is True for index, env in parsed.items()):
        return checker
    return check_entries(entries, **kwargs)


def run_entry_checks(
    v: BundleVerification,
    files: BundleFiles,
    options: VerifyOptions,
    verdicts: Callable[[], dict[int, bool]] | None = None,
) -> EntryChecker:
    """Checks 2-5 and 10; ``verdicts``: the signature verdicts a worker is computing (see
    ``_speculative``)."""
    entries = collect_entries(v, files)
    authorities, window = v.manifest.authorities, v.manifest.disclosure_window_seconds
    config = DomainConfig(authorities=authorities) if authorities else DomainConfig()
    if window is not None:
        config = replace(config, disclosure_window_seconds=window)
    kwargs: dict[str, Any] = {
        "origin": v.manifest.origin,  # a valid checkpoint was signed for exactly this origin
        "config": config,
        "trust_root": options.trust_root,
        "partial_registry": True,
    }
    if verdicts is not None:
        checker = _speculative(entries, verdicts, **kwargs)
    else:
        checker = check_entries(entries, **kwargs)
    v.findings.extend(checker.findings)
    check_case(v, checker)
    return checker


# --- step 9: media --------------------------------------------------------------------------------


def media_recorded(files: BundleFiles, checker: EntryChecker, case_id: str) -> dict[str, dict[str, str]]:
    """sha256 → {id field: id} (e.g. footage_id, derivative_id) of every file a parseable event of the
    case records (its type declares ``media``), whether or not the event passed its own checks (those
    have their own findings)."""
    recorded: dict[str, dict[str, str]] = {}
    for item in checker.checked:
        rules = declared(item.event_type) if item.case_id == case_id else None
        media = None if rules is None else rules.media
        if media is None:
            continue
        raw = files.small(member_path(ENVELOPES, item.leaf_index)) or b""
        body = parse_envelope(raw).statement.body  # it parsed once already
        sha, ref = body.get(media.sha256_field), body.get(media.id_field)
        if isinstance(sha, str) and HEX64.fullmatch(sha) and isinstance(ref, str):
            recorded.setdefault(sha, {media.id_field: ref})
    return recorded


def _media_candidates(directory: Path, sha: str) -> list[Path]:
    return [directory / sha, directory / sha[:2] / sha[2:4] / sha]


def _mismatch(v: BundleVerification, path: str, actual: str | None, refs: dict[str, str]) -> None:
    message = "a media file does not hash to its recorded SHA-256"
    v.find("MEDIA_MISMATCH", 9, message, path=path, actual_sha256=actual, **refs)


def _bundle_media(
    v: BundleVerification, files: BundleFiles, recorded: dict[str, dict[str, str]], seen: dict[str, str]
) -> None:
    for name in files.names(MEDIA):
        sha, member = name[len(MEDIA) :], files.members[name]
        if sha not in recorded:
            v.find("MEDIA_MISMATCH", 9, "a media file that no event of the case records", path=name)
            continue
        if member.sha256 != sha:
            _mismatch(v, name, member.sha256, recorded[sha])
        seen[sha] = ("verified" if member.sha256 == sha else "MISMATCH") + " (bundle)"


def _folder_media(
    v: BundleVerification, folder: Path, recorded: dict[str, dict[str, str]], seen: dict[str, str]
) -> None:
    for sha, refs in recorded.items():
        path = next((p for p in _media_candidates(folder, sha) if p.is_file()), None)
        if path is None:
            continue
        actual, _ = file_sha256(path)
        if actual != sha:
            _mismatch(v, str(path), actual, refs)
        seen[sha] = ("verified" if actual == sha else "MISMATCH") + " (--media)"


def check_media(
    v: BundleVerification, files: BundleFiles, recorded: dict[str, dict[str, str]], media_dir: Path | None
) -> None:
    """Bundle media must be files the case records and hash to their names; so must files in
    ``media_dir`` (named <sha256> or ab/cd/<sha256>). Recorded files that nobody provides are listed."""
    seen: dict[str, str] = {}
    _bundle_media(v, files, recorded, seen)
    if media_dir is not None:
        _folder_media(v, media_dir, recorded, seen)
    v.media = [
        {"sha256": sha, **refs, "status": seen.get(sha, "not provided")} for sha, refs in recorded.items()
    ]
    v.counts[9] = f"{len(seen)} of {len(recorded)} recorded files provided and hashed"
