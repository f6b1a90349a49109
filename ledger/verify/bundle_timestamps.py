"""Bundle check 8, trusted time: the RFC 3161 tokens (``timestamps/<n>.tsr``) over the checkpoint.

Policy (docs/verification.md):

* With TSA certificates given (``--tsa-cert``) or pinned (``tsa_certs`` in the pin file), the
  checkpoint must carry a token that verifies under one of them: none at all is
  ``TIMESTAMP_MISSING``; a token that does not verify is ``TIMESTAMP_INVALID`` (a malformed one, one
  over other bytes, one not granted — always; one whose signature no pinned certificate accepts —
  when no other token verified, since a bundle may also carry tokens of TSAs this verifier does not
  pin).
* A verified token's genTime is when the TSA saw the tree. A leaf of that tree that claims to have
  been integrated later (beyond ``MAX_SKEW``) contradicts it: ``TIMESTAMP_INVALID`` — the ledger's
  clock or its leaves' times are not truthful.
* Without any TSA certificate the tokens are listed as present but not checked (no finding): the
  claimed genTime is shown as claimed. The in-browser verifier does the same.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from domain.errors import MalformedInputError, VerificationError
from ledger.envelope.canonical import format_time, parse_time
from ledger.log import note, timestamp
from ledger.verify.bundle_files import BundleFiles
from ledger.verify.bundle_format import (
    CHECKPOINT,
    LEAVES,
    MAX_TIMESTAMPS,
    TIMESTAMP_MEMBER,
    TIMESTAMPS,
    member_path,
)
from ledger.verify.bundle_model import BundleVerification, VerifyOptions

STEP = 8
MAX_SKEW = timedelta(minutes=5)  # the ledger's clock against the TSA's: integrated_at may lead genTime by this
NOT_SIGNED = "the time-stamp is not signed by a trusted TSA"


def _members(v: BundleVerification, files: BundleFiles) -> list[str]:
    """The token members to judge (only when TSA certificates are given: without them nothing about
    the tokens is a finding, as in the in-browser verifier)."""
    names = files.names(TIMESTAMPS)
    for name in names:
        if TIMESTAMP_MEMBER.fullmatch(name) is None:
            v.find(timestamp.INVALID, STEP, "a time-stamp member is not named timestamps/<n>.tsr", path=name)
    kept = [n for n in names if TIMESTAMP_MEMBER.fullmatch(n)]
    if len(kept) > MAX_TIMESTAMPS:
        v.find(timestamp.INVALID, STEP, f"more than {MAX_TIMESTAMPS} time-stamp tokens", path=TIMESTAMPS)
        kept = kept[:MAX_TIMESTAMPS]
    return kept


def _latest_integration(files: BundleFiles, size: int) -> tuple[int, datetime] | None:
    """(leaf index, integrated_at) of the bundle's leaf with the latest integration time inside the
    checkpoint's tree; unreadable leaves are skipped (they have findings of their own)."""
    latest: tuple[int, datetime] | None = None
    for index in files.indexes(LEAVES):
        if index >= size:
            continue
        try:
            moment = parse_time(json.loads(files.small(member_path(LEAVES, index)) or b"")["integrated_at"])
        except (ValueError, KeyError, TypeError, MalformedInputError):
            continue
        if latest is None or moment > latest[1]:
            latest = (index, moment)
    return latest


def check_timestamps(v: BundleVerification, files: BundleFiles, options: VerifyOptions) -> None:
    """Judge the bundle's time-stamp tokens; fills ``v.checkpoint["timestamps"]``."""
    trusts = options.tsa_certs
    members = _members(v, files) if trusts else files.names(TIMESTAMPS)
    section: dict[str, object] = {
        "checked": bool(trusts),
        "source": options.tsa_source if trusts else None,
        "tokens": [],
        "gen_time": None,
    }
    v.checkpoint["timestamps"] = section
    raw = files.small(CHECKPOINT)
    try:
        body = None if raw is None else timestamp.stamped_message(raw)
        size = None if body is None else note.parse_checkpoint_body(body).size
    except MalformedInputError:
        body, size = None, None  # BAD_CHECKPOINT says so
    rows: list[dict[str, object]] = []
    if not trusts:
        for name in members:
            claimed = timestamp.gen_time_of(files.small(name) or b"")
            rows.append({"path": name, "status": "not checked",
                         "gen_time": None if claimed is None else format_time(claimed)})
        section["tokens"] = rows
        if members:
            v.caveats.append(
                f"{len(members)} time-stamp token(s) were not checked: pass --tsa-cert with the certificate of the "
                "time-stamping authority's CA (or pin it: evidence-ledger trust pin --tsa-cert FILE)."
            )
        return
    if body is None or size is None:
        section["tokens"] = [{"path": n, "status": "not checked: no usable checkpoint"} for n in members]
        return
    verified: list[tuple[str, timestamp.VerifiedToken]] = []
    unsigned: list[str] = []
    for name in members:
        try:
            token = timestamp.verify_token(files.small(name) or b"", body, trusts)
        except VerificationError as exc:
            if exc.message.startswith(NOT_SIGNED):
                unsigned.append(name)
                rows.append({"path": name, "status": "not signed by a pinned TSA"})
            else:
                v.find(timestamp.INVALID, STEP, exc.message, path=name)
                rows.append({"path": name, "status": "invalid"})
            continue
        verified.append((name, token))
        rows.append({"path": name, "status": "verified", "tsa": token.tsa, "gen_time": format_time(token.gen_time)})
    section["tokens"] = rows
    if not verified:
        for name in unsigned:
            v.find(timestamp.INVALID, STEP, "no pinned TSA certificate verifies this time-stamp", path=name)
        if not members:
            v.find(timestamp.MISSING, STEP, "the policy needs a time-stamp by a pinned TSA over the checkpoint; the bundle"
                   " carries none", path=CHECKPOINT)
        return
    earliest = min(t.gen_time for _, t in verified)
    section["gen_time"] = format_time(earliest)
    latest = _latest_integration(files, size)
    if latest is not None and latest[1] > earliest + MAX_SKEW:
        v.find(
            timestamp.INVALID,
            STEP,
            "a leaf of the time-stamped tree claims a later integration than the TSA's time: the log's times are"
            " not truthful",
            leaf_index=latest[0],
            integrated_at=format_time(latest[1]),
            gen_time=format_time(earliest),
        )
