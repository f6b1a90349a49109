"""Rebuilding the read models (case state, timeline, custody links, public releases, log head) from the stored events.

The read models are normally written in the same transaction as the events they reflect, with the
position (last leaf index) in ``projection_tracking``. ``rebuild`` folds the log again from leaf 0
— or, with ``from_zero=False``, from the tracked position — through the same decision code the
append path uses (every signature checked against the registry as it was then), so a rebuild
equals the incremental result. This is the repair for read models that failed their integrity
check (``STATE_TAMPERED``): they are rewritten from the signed events, with fresh MACs.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.append import Appender
from ledger.envelope.dsse import REGISTRY_CASE_ID, parse_envelope
from ledger.log import merkle, tlog
from ledger.storage.integrity import tampered
from ledger.storage.read_models import (
    CaseHead,
    CaseLines,
    LogHead,
    case_heads,
    tracked_position,
    write_position,
    write_read_models,
)
from ledger.storage.schema import READ_MODEL_TABLES
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


def _resume_heads(tx: Tx, appender: Appender, position: int) -> dict[str, CaseHead]:
    """The checked heads of every stream as of the tracked position (each row's version must be the
    stream's last seq among the entries up to that position)."""
    tops = {
        str(r[0]): (int(r[1]), str(r[2]))
        for r in tx.query(
            "SELECT e.case_id, e.seq, e.envelope_sha256 FROM log_entries e WHERE e.leaf_index <= ? AND e.seq ="
            " (SELECT MAX(m.seq) FROM log_entries m WHERE m.case_id = e.case_id AND m.leaf_index <= ?)",
            (position, position),
        )
    }
    return case_heads(tx, appender.mac, tops)


def rebuild(
    db: Database, appender: Appender, *, from_zero: bool = True, progress: Progress | None = None
) -> int:
    """Fold the log into fresh read models; returns the number of entries applied."""
    with db.write() as tx:
        total = int((tx.one("SELECT COUNT(*) FROM log_entries") or (0,))[0])
        if from_zero:
            for table in READ_MODEL_TABLES:
                tx.execute(f"DELETE FROM {table}")
            heads: dict[str, CaseHead] = {}
            position = -1
        else:
            position = tracked_position(tx, appender.mac)
            heads = _resume_heads(tx, appender, position)
        tree = tlog.load_range(tx, position + 1)
        applied = 0
        touched: dict[str, int] = {}
        lines = CaseLines()
        integrated_at = ""
        while True:
            chunk = _entries(tx, db, position + 1)
            if not chunk:
                break
            for index, case_id, raw, integrated_at in chunk:
                if index != position + 1:
                    raise tampered("the log", check="gap", stream="log", leaf_index=position + 1)
                envelope = parse_envelope(raw)
                state, ctx, event = appender.decide(
                    envelope, False, heads.get(case_id), heads, at=integrated_at, leaf_index=index
                )
                heads[case_id] = CaseHead(envelope.statement.seq, envelope.sha256, state)
                touched[case_id] = index
                tree.append(merkle.leaf_hash(tlog.leaf_bytes(envelope.sha256, index, integrated_at)))
                if case_id != REGISTRY_CASE_ID:
                    lines.add(appender.mac, event, ctx, state)
                position = index
                applied += 1
            if progress is not None:
                progress(position + 1, total)
        if position >= 0 and tree.root() != tlog.root_at(tx, position + 1):
            raise tampered("the log", check="tree", stream="log")
        lines.write(tx, replace=True)
        if touched:
            write_read_models(tx, appender.mac, {cid: heads[cid] for cid in touched}, touched)
            cases = [head for cid, head in heads.items() if cid != REGISTRY_CASE_ID]
            counts = (len(cases), sum(head.public for head in cases))
            write_position(tx, appender.mac, position, LogHead(tree.size, tree.root(), integrated_at, *counts))
    return applied
