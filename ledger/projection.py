"""Rebuilding the read models (case state, timeline, public releases) from the stored events.

The read models are normally written in the same transaction as the events they reflect, with the
position (last leaf index) in ``projection_tracking``. ``rebuild`` folds the log again from leaf 0
— or, with ``from_zero=False``, from the tracked position — through the same decision code the
append path uses, so a rebuild equals the incremental result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from domain import projections
from ledger.append import Appender
from ledger.envelope import REGISTRY_CASE_ID, parse_envelope
from ledger.read_models import TRACKING_NAME, CaseHead, load_state, write_read_models
from ledger.storage.sql import Database, Tx

Progress = Callable[[int, int], None]
PAGE = 2000


def _entries(tx: Tx, db: Database, start: int) -> list[tuple[int, str, bytes, str]]:
    rows = tx.query(
        "SELECT e.leaf_index, e.case_id, s.state, e.integrated_at FROM log_entries e"
        f" JOIN {db.events_table} s ON s.originator_id = {db.case_key_sql('e.case_id')}"
        " AND s.originator_version = e.seq WHERE e.leaf_index >= ? ORDER BY e.leaf_index LIMIT ?",
        (start, PAGE),
    )
    return [(int(r[0]), str(r[1]), bytes(r[2]), str(r[3])) for r in rows]


def _load_heads(tx: Tx) -> dict[str, CaseHead]:
    rows = tx.query("SELECT case_id, version, head_sha256, state FROM case_state")
    return {r[0]: CaseHead(int(r[1]), str(r[2]), load_state(r[0], str(r[3]))) for r in rows}


def rebuild(
    db: Database, appender: Appender, *, from_zero: bool = True, progress: Progress | None = None
) -> int:
    """Fold the log into fresh read models; returns the number of entries applied."""
    with db.write() as tx:
        total = int((tx.one("SELECT COUNT(*) FROM log_entries") or (0,))[0])
        if from_zero:
            for table in ("case_state", "case_timeline", "public_releases", "projection_tracking"):
                tx.execute(f"DELETE FROM {table}")
            heads: dict[str, CaseHead] = {}
            position = -1
        else:
            row = tx.one("SELECT position FROM projection_tracking WHERE name = ?", (TRACKING_NAME,))
            position = -1 if row is None else int(row[0])
            heads = _load_heads(tx)
        applied = 0
        touched: dict[str, int] = {}
        timeline: list[tuple[Any, ...]] = []
        while True:
            chunk = _entries(tx, db, position + 1)
            if not chunk:
                break
            for index, case_id, raw, integrated_at in chunk:
                envelope = parse_envelope(raw)
                state, ctx, event = appender._decide(
                    envelope, False, heads.get(case_id), heads, at=integrated_at, leaf_index=index
                )
                heads[case_id] = CaseHead(envelope.statement.seq, envelope.sha256, state)
                touched[case_id] = index
                if case_id != REGISTRY_CASE_ID:
                    entry = projections.timeline_entry(event, ctx)
                    timeline.append(
                        (case_id, envelope.statement.seq, index, json.dumps(entry, sort_keys=True))
                    )
                position = index
                applied += 1
            if progress is not None:
                progress(position + 1, total)
        tx.executemany(
            "INSERT INTO case_timeline (case_id, seq, leaf_index, entry) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (case_id, seq) DO UPDATE SET leaf_index = excluded.leaf_index, entry = excluded.entry",
            timeline,
        )
        if touched:
            write_read_models(tx, {cid: heads[cid] for cid in touched}, touched)
            tx.execute(
                "INSERT INTO projection_tracking (name, position) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (TRACKING_NAME, position),
            )
    return applied
