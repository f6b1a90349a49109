"""The audit of the access log (check 13): recompute its tree from the stored entries, check every
stored access checkpoint, and say which indexes were edited, deleted or inserted.

Trusts nothing in the tables: each entry must parse strictly (``ledger.log.access_entry``), state its
own index, agree with the columns stored beside it (which the auditors' filters use), and hash to the
stored leaf node; the tree folded from the entries must give every stored node and the root of every
access checkpoint, which must be signed by the log key under the origin ``<origin>/access``. The
shared checks (``ledger.verify.scan_tree`` and ``check_checkpoints``) do the folding and the
signatures; their findings are reported as ACCESS_LOG_TAMPERED with the check that found them.

Codes: ACCESS_LOG_TAMPERED (indexes only, never an entry's content), UNCHECKPOINTED_ACCESS_ENTRIES.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.errors import MalformedInputError
from ledger.audit.source import AccessInput, AccessRow
from ledger.envelope.canonical import format_time
from ledger.log import merkle, note
from ledger.log.access_entry import access_origin, parse_entry
from ledger.verify import Finding, check_checkpoints, checkpoint_sizes, scan_tree

STEP = 13
TAMPERED = "ACCESS_LOG_TAMPERED"
UNCHECKPOINTED = "UNCHECKPOINTED_ACCESS_ENTRIES"


@dataclass
class AccessAudit:
    size: int = 0
    latest_checkpoint: int | None = None
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "latest_checkpoint": self.latest_checkpoint}


def _tampered(message: str, **where: Any) -> Finding:
    return Finding(TAMPERED, STEP, message, evidence=where)


def _entry_findings(row: AccessRow, previous_time: str) -> list[Finding]:
    i = row.index
    try:
        entry = parse_entry(row.entry)
    except MalformedInputError:
        return [_tampered(f"access entry {i} is not a well-formed entry", access_index=i, check="entry")]
    found = []
    r = entry.record
    if entry.index != i:
        found.append(_tampered(f"access entry {i} states another index", access_index=i, check="index"))
    columns = (row.case_id, row.actor, row.action, row.outcome, row.recorded_at)
    if columns != (r.case_id, r.actor, r.action, r.outcome, entry.recorded_at):
        found.append(_tampered(f"the columns of access entry {i} differ from its entry", access_index=i,
                               check="columns"))
    if entry.recorded_at < previous_time:
        found.append(_tampered(f"access entry {i} is recorded before the entry above it", access_index=i,
                               check="order"))
    return found


def _leaf_hashes(access: AccessInput, size: int) -> tuple[list[bytes], list[Finding]]:
    """Leaf hashes in index order (a deleted entry's stored leaf node stands in for it), up to the
    first position with neither; one finding per missing index."""
    by_index = {row.index: row for row in access.entries}
    hashes: list[bytes] = []
    findings = []
    for i in range(size):
        row = by_index.get(i)
        if row is None:
            findings.append(_tampered(f"access entry {i} is missing (deleted)", access_index=i, check="missing"))
            stored = access.nodes.get((0, i))
            if stored is None:
                break
            hashes.append(stored)
        else:
            hashes.append(merkle.leaf_hash(row.entry))
    return hashes, findings


def _relabel(finding: Finding) -> Finding:
    """A finding of the shared tree/checkpoint checks, as an access-log finding (indexes only)."""
    where: dict[str, Any] = {"check": finding.code}
    if finding.leaf_index is not None:
        where["access_index"] = finding.leaf_index
    for key in ("size", "level", "index", "first", "count", "missing", "sizes", "note_size"):
        if key in finding.evidence:
            where[key] = finding.evidence[key]
    message = finding.message.replace("stored tree node for leaf", "stored access-tree node for entry")
    return _tampered(f"access log: {message}", **where)


def audit_access(
    access: AccessInput,
    *,
    log_key: note.VerifierKey,
    origin: str | None,
    now: datetime,
    max_age: timedelta,
) -> AccessAudit:
    result = AccessAudit()
    indexes = [row.index for row in access.entries]
    result.size = max(indexes) + 1 if indexes else 0
    previous = ""
    for row in access.entries:
        result.findings += _entry_findings(row, previous)
        previous = max(previous, row.recorded_at)
    hashes, missing = _leaf_hashes(access, result.size)
    result.findings += missing
    scan = scan_tree(hashes, {*checkpoint_sizes(access.checkpoints), result.size}, access.nodes)
    checked = check_checkpoints(
        scan, access.checkpoints, log_key=log_key, origin=None if origin is None else access_origin(origin),
        log_size=result.size,
    )
    result.findings += [_relabel(f) for f in (*scan.findings, *checked.findings)]
    sizes = [c.size for c in checked.known]
    result.latest_checkpoint = max(sizes) if sizes else None
    _uncheckpointed(access.entries, result, now, max_age)
    return result


def _uncheckpointed(entries: Sequence[AccessRow], result: AccessAudit, now: datetime, max_age: timedelta) -> None:
    newest = result.latest_checkpoint or 0
    if result.size <= newest:
        return
    count = result.size - newest
    result.notes.append(f"{count} access-log entries past the newest access checkpoint, from index {newest}")
    first = next((row for row in entries if row.index == newest), None)
    if first is not None and first.recorded_at < format_time(now - max_age):
        result.findings.append(
            Finding(
                UNCHECKPOINTED,
                STEP,
                f"{count} access-log entries from index {newest} on are covered by no access checkpoint, the "
                f"first since {first.recorded_at} (longer than {int(max_age.total_seconds())} s)",
                evidence={"count": count, "first_index": newest, "recorded_at": first.recorded_at},
            )
        )
