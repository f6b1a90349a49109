"""Bundle checks 1 (manifest), 2-5 and 10 (the entries, through the shared engine) and 9 (media)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
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

PARALLEL_FROM = 200  # entries; below this a worker process costs more than it saves
SEND_EVERY = 100  # entries parsed before their signatures go to a worker
_FORK = "fork"  # the workers inherit the entries; where processes cannot fork, one process checks all

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


def _can_fork() -> bool:
    """Fork only where processes can, and only from a single-threaded process (a forked child has
    only the forking thread: a lock another thread held at the fork would never be released)."""
    return _FORK in multiprocessing.get_all_start_methods() and threading.active_count() == 1


@contextmanager
def worker_pool(workers: int, entries: int) -> Iterator[ProcessPoolExecutor | None]:
    """``workers`` - 1 forked processes (they inherit what this one holds); None (check in this
    process) with one worker, where processes cannot fork, or for fewer than ``PARALLEL_FROM``
    entries, where a pool costs more than it saves."""
    if workers <= 1 or entries < PARALLEL_FROM or not _can_fork():
        yield None
        return
    with ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context(_FORK)) as pool:
        yield pool


def _signature_verdicts(items: list[tuple[int, bytes, bytes, bytes]]) -> dict[int, bool]:
    """In a worker process: leaf index -> verdict of (leaf index, public key, signature, message)."""
    return {index: _verify_one((public, sig, message)) for index, public, sig, message in items}


def _speculative(entries: list[Entry], pool: ProcessPoolExecutor, **kwargs: Any) -> EntryChecker:
    """Replay with every signature assumed valid while the pool's processes check them for real.

    This process parses the entries and sends the workers, every ``SEND_EVERY`` entries, what to
    verify (key, signature, signed message: nothing is parsed twice), so that they start while it
    still parses. An envelope whose key is registered only further on waits for the end of the
    parsing: the verdicts are those of ``check_entries``, which uses the keys registered anywhere in
    the bundle. When every parsed entry's signature verifies (a clean bundle), the result is
    exactly what ``check_entries`` would give; otherwise the entries are checked again the ordinary
    way. A worker's exception is raised here, a dead worker is ``BrokenProcessPool``: never
    swallowed."""
    parsed: dict[int, UnverifiedEnvelope] = {}
    keys: dict[str, bytes] = {}
    futures = []
    batch: list[tuple[int, bytes, bytes, bytes]] = []
    waiting: list[tuple[int, UnverifiedEnvelope]] = []

    def item(index: int, env: UnverifiedEnvelope) -> tuple[int, bytes, bytes, bytes]:
        return index, keys[env.keyid], env.sig, pae(PAYLOAD_TYPE, env.payload)

    for entry in entries:
        try:
            env = parse_envelope(entry.envelope)
        except LedgerError:
            continue
        parsed[entry.leaf_index] = env
        keys.update(public_keys_in([env]))
        if env.keyid in keys:
            batch.append(item(entry.leaf_index, env))
        else:
            waiting.append((entry.leaf_index, env))
        if len(batch) >= SEND_EVERY:
            futures.append(pool.submit(_signature_verdicts, batch))
            batch = []
    batch += [item(index, env) for index, env in waiting if env.keyid in keys]
    if batch:
        futures.append(pool.submit(_signature_verdicts, batch))
    checker = EntryChecker(**kwargs, signature_verdicts=dict.fromkeys(parsed, True))
    for entry in entries:
        checker.check(entry, parsed.get(entry.leaf_index))
    verdicts: dict[int, bool] = {}
    for future in futures:
        verdicts.update(future.result())
    if verdicts.keys() == parsed.keys() and all(verdicts.values()):
        return checker
    return check_entries(entries, **kwargs)


def run_entry_checks(
    v: BundleVerification, files: BundleFiles, options: VerifyOptions, pool: ProcessPoolExecutor | None = None
) -> EntryChecker:
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
    if pool is not None and len(entries) >= PARALLEL_FROM:
        checker = _speculative(entries, pool, **kwargs)
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
