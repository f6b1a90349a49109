"""Log completeness and order (check 6): which stored event each leaf commits to, trusting no join.

The leaves and the stored events are read separately. A leaf names its envelope by the envelope's
SHA-256 (inside the leaf bytes, which the tree commits to), so each leaf is matched with the
stored event whose bytes have that hash, wherever that event row sits. Only when no row has that
hash is the row at the log entry's own (case id, seq) taken instead: an edited envelope then
reaches the engine, which reports what the edit broke (leaf, signature, chain). After the engine
ran, ``order_findings`` compares positions: the row's key with the statement's (case, seq), the
leaf's own index with its position, seq order with leaf order, and the log row's columns with the
leaf and the statement.

Codes: MISSING_ENTRY (a leaf index with no log row, or a leaf whose event is gone),
UNLOGGED_EVENT (an event row that no leaf commits to), ORDER_VIOLATION, METADATA_MISMATCH.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.verify.engine import Checked, Entry
from ledger.verify.findings import Finding


@dataclass(frozen=True)
class LogRow:
    """One row of the log as stored: the exact leaf bytes and the columns kept beside them."""

    leaf_index: int
    leaf: bytes
    event_id: str | None = None
    case_id: str | None = None
    seq: int | None = None
    event_type: str | None = None
    envelope_sha256: str | None = None
    integrated_at: str | None = None


@dataclass(frozen=True)
class EventRow:
    """One stored event: the row's own key and the envelope bytes it holds."""

    case_id: str
    seq: int
    envelope: bytes


@dataclass
class Matched:
    entries: list[Entry] = field(default_factory=list)
    rows: dict[int, EventRow] = field(default_factory=dict)  # leaf index -> event row given to the engine
    leaf_says: dict[int, tuple[str | None, int | None]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    unlogged: list[EventRow] = field(default_factory=list)


def _leaf_fields(leaf: bytes) -> tuple[str | None, int | None]:
    """(envelope_sha256, index) as the leaf states them, read leniently (the engine parses strictly)."""
    try:
        data = json.loads(leaf)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    digest, index = data.get("envelope_sha256"), data.get("index")
    return (
        digest if isinstance(digest, str) else None,
        index if type(index) is int else None,
    )


class _EventIndex:
    """Stored events by envelope hash and by row key; each row is handed out once."""

    def __init__(self, events: Sequence[EventRow]) -> None:
        self.by_hash: dict[str, list[EventRow]] = {}
        self.by_key: dict[tuple[str, int], EventRow] = {}
        for row in events:
            self.by_hash.setdefault(hashlib.sha256(row.envelope).hexdigest(), []).append(row)
            self.by_key[(row.case_id, row.seq)] = row
        self.used: set[tuple[str, int]] = set()

    def take(self, digest: str | None, key: tuple[str | None, int | None]) -> EventRow | None:
        candidates = [r for r in self.by_hash.get(digest or "", ()) if (r.case_id, r.seq) not in self.used]
        row = next((r for r in candidates if (r.case_id, r.seq) == key), None) or next(iter(candidates), None)
        if row is None and key[0] is not None and key[1] is not None:
            row = self.by_key.get((key[0], key[1]))
            if row is not None and (row.case_id, row.seq) in self.used:
                row = None
        if row is not None:
            self.used.add((row.case_id, row.seq))
        return row

    def left_over(self) -> list[EventRow]:
        return [r for key, r in self.by_key.items() if key not in self.used]


def match_log(log: Sequence[LogRow], events: Sequence[EventRow]) -> Matched:
    """Pair every leaf with its stored event; report gaps, lost events and unlogged events."""
    index = _EventIndex(events)
    matched = Matched()
    expected = 0
    for row in sorted(log, key=lambda r: r.leaf_index):
        for missing in range(expected, row.leaf_index):
            matched.findings.append(
                Finding(
                    "MISSING_ENTRY",
                    6,
                    f"leaf index {missing} has no log entry (the index has a gap)",
                    missing,
                )
            )
        expected = row.leaf_index + 1
        digest, says = _leaf_fields(row.leaf)
        matched.leaf_says[row.leaf_index] = (digest, says)
        event = index.take(digest, (row.case_id, row.seq))
        if event is None:
            matched.findings.append(
                Finding(
                    "MISSING_ENTRY",
                    6,
                    "no stored event holds the envelope this leaf commits to (event row deleted)",
                    row.leaf_index,
                    row.case_id,
                    row.seq,
                    {"envelope_sha256": digest},
                )
            )
            continue
        matched.rows[row.leaf_index] = event
        matched.entries.append(Entry(row.leaf_index, event.envelope, row.leaf))
    matched.unlogged = index.left_over()
    for event in sorted(matched.unlogged, key=lambda r: (r.case_id, r.seq)):
        matched.findings.append(
            Finding(
                "UNLOGGED_EVENT",
                6,
                "a stored event that no leaf of the log commits to",
                None,
                event.case_id,
                event.seq,
                {"envelope_sha256": hashlib.sha256(event.envelope).hexdigest()},
            )
        )
    return matched


def _at(c: Checked, code: str, message: str, **evidence: Any) -> Finding:
    return Finding(code, 6, message, c.leaf_index, c.case_id, c.seq, evidence)


def _row_place(c: Checked, row: EventRow | None) -> Finding | None:
    if row is None or c.case_id is None or (row.case_id, row.seq) == (c.case_id, c.seq):
        return None
    return _at(
        c,
        "ORDER_VIOLATION",
        f"the events table keeps this envelope at case {row.case_id} seq {row.seq}",
        row_case_id=row.case_id,
        row_seq=row.seq,
    )


def _metadata(c: Checked, row: LogRow, leaf_digest: str | None, event_id: str | None) -> Finding | None:
    expected = {
        "case_id": c.case_id,
        "seq": c.seq,
        "event_type": c.event_type,
        "envelope_sha256": leaf_digest,
        "integrated_at": c.integrated_at,
        "event_id": event_id,
    }
    differ = {
        name: {"stored": getattr(row, name), "expected": want}
        for name, want in expected.items()
        if want is not None and getattr(row, name) is not None and getattr(row, name) != want
    }
    if not differ:
        return None
    return _at(
        c, "METADATA_MISMATCH", f"log entry columns disagree: {', '.join(sorted(differ))}", columns=differ
    )


def order_findings(
    matched: Matched,
    checked: Sequence[Checked],
    log: Sequence[LogRow],
    event_ids: Mapping[int, str] | None = None,
) -> list[Finding]:
    """ORDER_VIOLATION and METADATA_MISMATCH, from the engine's verdicts (entries in leaf order)."""
    log_rows = {r.leaf_index: r for r in log}
    last: dict[str, tuple[int, int]] = {}  # case id -> (seq, leaf index) seen last
    findings: list[Finding] = []
    for c in checked:
        digest, says = matched.leaf_says.get(c.leaf_index, (None, None))
        if says is not None and says != c.leaf_index:
            findings.append(
                _at(c, "ORDER_VIOLATION", f"the leaf at position {c.leaf_index} says index {says}")
            )
        placed = _row_place(c, matched.rows.get(c.leaf_index))
        if placed is not None:
            findings.append(placed)
        if c.case_id is not None and c.seq is not None:
            before = last.get(c.case_id)
            if before is not None and c.seq < before[0]:
                findings.append(
                    _at(
                        c,
                        "ORDER_VIOLATION",
                        f"seq {c.seq} comes after seq {before[0]} (leaf {before[1]}) in log order",
                        after_leaf=before[1],
                    )
                )
            last[c.case_id] = (c.seq, c.leaf_index)
        row = log_rows.get(c.leaf_index)
        meta = None if row is None else _metadata(c, row, digest, (event_ids or {}).get(c.leaf_index))
        if meta is not None:
            findings.append(meta)
    return findings
