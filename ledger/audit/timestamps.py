"""The audit's trusted-time checks (check 8): every stored RFC 3161 token, and the time-stamp policy.

Every ``log_timestamps`` row is checked, whoever wrote it (docs/audit.md):

* its token must be a granted reply over SHA-256 of the body of the stored checkpoint of its size
  (a row for a size that was never signed, or over other bytes, is ``TIMESTAMP_INVALID``);
* with TSA certificates (``--tsa-cert``, else the data dir's ``tsa.json``), its signature must chain
  to one of them (``TIMESTAMP_INVALID`` otherwise);
* the TSA saw the tree at genTime, so no leaf of that tree may claim a later integration
  (beyond ``MAX_SKEW``): ``TIMESTAMP_INVALID`` — the log's times are not truthful;
* the checkpoint row's signing time (stored beside it, not signed) may not be after the genTime of
  a token over it (beyond ``MAX_SKEW``): ``CHECKPOINT_TAMPERED`` — the row was re-timed.

The policy (``TIMESTAMP_MISSING``), with TSA certificates: a token proves only "existed by genTime",
so an insider who rewrites history with backdated integration times is caught by the time-stamps
that are *missing*. Every entry integrated at or after ``since`` (default: every entry), older than
``2 × tsa_interval`` (or claiming a time after the audit's now: forward-dated), and below the newest
checkpoint, must be covered by a verified token over a
checkpoint that contains it with a genTime no later than ``integrated_at + 2 × tsa_interval +
MAX_SKEW``. The first entry that is not is reported, with how many follow it.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.envelope.canonical import format_time, parse_time
from ledger.log import timestamp
from ledger.verify import CheckpointInput, Finding, LogRow

STEP = 8
MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class TimestampRow:
    """One ``log_timestamps`` row as stored."""

    size: int
    tsa: str
    token: bytes
    received_at: str


@dataclass(frozen=True)
class TimestampPolicy:
    """What the audit checks the stored tokens against."""

    trusts: tuple[timestamp.TsaTrust, ...] = ()
    source: str = "--tsa-cert"  # or "tsa.json" (the audited data dir's own: not independent)
    interval: timedelta = timedelta(seconds=60)
    since: datetime | None = None  # the policy covers entries integrated at or after this (None: all)


def _leaf_time(leaf: bytes) -> datetime | None:
    try:
        return parse_time(json.loads(leaf)["integrated_at"])
    except (ValueError, KeyError, TypeError, MalformedInputError):
        return None


def _bodies(checkpoints: Sequence[CheckpointInput]) -> dict[int, bytes]:
    bodies = {}
    for item in checkpoints:
        if item.size is None or item.external:
            continue
        try:
            bodies[item.size] = timestamp.stamped_message(item.note)
        except LedgerError:
            continue  # the checkpoint checks report an unreadable note
    return bodies


def _invalid(row: TimestampRow, message: str, **more: object) -> Finding:
    return Finding(
        timestamp.INVALID, STEP, f"time-stamp of TSA {row.tsa} for size {row.size}: {message}",
        evidence={"size": row.size, "tsa": row.tsa, **more},
    )


def _check_row(row: TimestampRow, body: bytes, policy: TimestampPolicy) -> datetime | None:
    """The verified genTime (None when no certificate was given); raises VerificationError."""
    if not policy.trusts:
        parsed = timestamp.parse_token(row.token)
        timestamp.check_content(parsed, body)
        return None
    return timestamp.verify_token(row.token, body, policy.trusts).gen_time


def timestamp_findings(
    rows: Sequence[TimestampRow],
    checkpoints: Sequence[CheckpointInput],
    checkpoint_times: dict[int, str],
    log: Sequence[LogRow],
    policy: TimestampPolicy,
    now: datetime,
) -> tuple[list[Finding], dict[int, datetime]]:
    """The findings, and the verified genTime of each stamped size (earliest of its tokens)."""
    findings: list[Finding] = []
    bodies = _bodies(checkpoints)
    leaf_times = {row.leaf_index: _leaf_time(row.leaf) for row in log}
    stamped: dict[int, datetime] = {}
    for row in rows:
        body = bodies.get(row.size)
        if body is None:
            findings.append(_invalid(row, "no checkpoint of this size is stored"))
            continue
        try:
            gen_time = _check_row(row, body, policy)
        except VerificationError as exc:
            findings.append(_invalid(row, exc.message))
            continue
        if gen_time is None:
            continue
        stamped[row.size] = min(gen_time, stamped.get(row.size, gen_time))
    for size, gen_time in sorted(stamped.items()):
        latest = leaf_times.get(size - 1)  # integration times never go back along the log
        if latest is not None and latest > gen_time + MAX_SKEW:
            findings.append(Finding(
                timestamp.INVALID, STEP,
                f"the last leaf of the checkpoint of size {size} claims integration at {format_time(latest)}, after"
                f" the TSA's time {format_time(gen_time)}: the log's times are not truthful",
                leaf_index=size - 1, evidence={"size": size, "gen_time": format_time(gen_time)},
            ))
        signed = checkpoint_times.get(size)
        if signed is not None and signed > format_time(gen_time + MAX_SKEW):
            findings.append(Finding(
                "CHECKPOINT_TAMPERED", STEP,
                f"checkpoint row of size {size} has a signing time {signed} after its RFC 3161 time-stamp"
                f" ({format_time(gen_time)})",
                evidence={"size": size},
            ))
    if policy.trusts:
        findings += _missing(stamped, leaf_times, checkpoints, policy, now)
    return findings, stamped


def _missing(
    stamped: dict[int, datetime],
    leaf_times: dict[int, datetime | None],
    checkpoints: Sequence[CheckpointInput],
    policy: TimestampPolicy,
    now: datetime,
) -> list[Finding]:
    sizes = [c.size for c in checkpoints if c.size is not None and not c.external]
    newest = max(sizes, default=0)
    bound = 2 * policy.interval
    # earliest[k]: the earliest genTime among stamped sizes >= ordered[k] (a token over a tree of
    # size s covers the entries below s)
    ordered = sorted(stamped)
    earliest: list[datetime] = []
    for size in reversed(ordered):
        earliest.append(min(stamped[size], earliest[-1]) if earliest else stamped[size])
    earliest.reverse()
    first: tuple[int, datetime] | None = None
    count = 0
    for index in range(newest):
        moment = leaf_times.get(index)
        recent = moment is not None and now - bound < moment <= now + MAX_SKEW
        if moment is None or recent or (policy.since is not None and moment < policy.since):
            continue  # a time after now is no excuse: a forward-dated entry needs its time-stamp too
        k = bisect.bisect_right(ordered, index)  # the first stamped size > index
        if k < len(ordered) and earliest[k] <= moment + bound + MAX_SKEW:
            continue
        count += 1
        first = first or (index, moment)
    if first is None:
        return []
    return [Finding(
        timestamp.MISSING, STEP,
        f"{count} entries from index {first[0]} on have no RFC 3161 time-stamp by a trusted TSA within"
        f" {int(bound.total_seconds())} s of their integration (the first integrated {format_time(first[1])})",
        leaf_index=first[0],
        evidence={"count": count, "first_index": first[0], "integrated_at": format_time(first[1])},
    )]


__all__ = ["MAX_SKEW", "TimestampPolicy", "TimestampRow", "timestamp_findings"]
