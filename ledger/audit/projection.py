"""Check 11: the read models rebuilt from the verified events equal the live ones (PROJECTION_DRIFT).

The engine has already folded every case through ``domain.case.apply`` (and the registry through
``domain.registry.apply_registry``): its final states are the heads. The rows are then built by
the append path's own ``write_read_models``, run against a scratch in-memory SQLite store, and the
timeline lines and custody links by ``domain.projections.timeline_entry`` and ``custody_entry``
with the same context the append path gives them. Nothing about the row format is restated here,
so the rebuild cannot drift from the writer. Every column the writer sets is compared exactly (a blanked field is drift), and with the
service's state key every row's MAC is checked too. Cases whose events have findings are not
compared: their drift would only restate the finding.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from domain import projections
from domain.context import EventContext
from domain.events import parse_body
from ledger.audit.source import ReadModels, read_models
from ledger.envelope.dsse import REGISTRY_CASE_ID, UnverifiedEnvelope
from ledger.storage.integrity import Field, RowMac
from ledger.storage.read_models import (
    READ_MODEL_FORMAT,
    STATISTICS_KEY,
    TRACKING_NAME,
    CaseHead,
    custody_row,
    timeline_row,
    write_read_models,
)
from ledger.storage.sql import Database, Tx
from ledger.verify import EntryChecker, Finding

_SCRATCH_TABLES = ("case_state (", "public_releases (")


class _Unsigned(RowMac):
    """The scratch rebuild's rows are compared by content only: computing their MACs would be wasted."""

    def __init__(self) -> None:
        super().__init__(bytes(32))

    def mac(self, kind: str, fields: Sequence[Field]) -> str:
        return ""


def _scratch() -> tuple[sqlite3.Connection, Tx]:
    conn = sqlite3.connect(":memory:")
    cursor = conn.cursor()
    for statement in Database.sqlite_ddl():
        if any(f"EXISTS {name}" in statement for name in _SCRATCH_TABLES):
            cursor.execute(statement)
    return conn, Tx(cursor, postgres=False)


def _heads(checker: EntryChecker, skip: set[str]) -> tuple[dict[str, CaseHead], dict[str, int]]:
    heads: dict[str, CaseHead] = {}
    leaf_of: dict[str, int] = {}
    for case_id, track in checker.cases.items():
        if case_id in skip or track.state is None or not track.events or track.head is None:
            continue
        heads[case_id] = CaseHead(track.version, track.head, track.state)
        leaf_of[case_id] = int(track.events[-1]["leaf_index"])
    return heads, leaf_of


def _timeline(
    checker: EntryChecker, parsed: Mapping[int, UnverifiedEnvelope], skip: set[str], models: ReadModels
) -> None:
    """The timeline lines and custody links exactly as the append path writes them (same context,
    leaf index included; a footage item's links numbered in log order from 1)."""
    mac = _Unsigned()
    decided = checker.events or {}  # the events as the rules parsed them
    rows: dict[tuple[str, int], tuple[int, str]] = {}
    steps: dict[tuple[str, str], int] = {}
    for c in sorted(checker.checked, key=lambda c: c.leaf_index):
        if not c.ok or c.case_id in skip or c.case_id == REGISTRY_CASE_ID or c.case_id is None:
            continue
        st = parsed[c.leaf_index].statement
        event = decided.get(c.leaf_index)
        if event is None:
            event = parse_body(st.type, st.type_version, st.body)
        ctx = EventContext(
            case_id=st.case_id,
            seq=st.seq,
            occurred_at=st.occurred_at,
            signer_key_id=st.signer,
            actor=str(c.actor),
            role=str(c.role),
            leaf_index=c.leaf_index,
        )
        line = timeline_row(mac, st.case_id, st.seq, c.leaf_index, projections.timeline_entry(event, ctx))
        rows[(st.case_id, st.seq)] = (c.leaf_index, str(line[3]))
        link = projections.custody_entry(event, ctx)
        if link is not None:
            step = steps[(st.case_id, link[0])] = steps.get((st.case_id, link[0]), 0) + 1
            row = custody_row(mac, st.case_id, link[0], step, st.seq, c.leaf_index, link[1])
            models.custody[(st.case_id, link[0], step)] = (st.seq, c.leaf_index, str(row[5]))
    models.timeline = rows


def rebuild_read_models(
    checker: EntryChecker,
    parsed: Mapping[int, UnverifiedEnvelope],
    skip: set[str],
    log_size: int,
    log_head: tuple[int, bytes, str] | None,
) -> ReadModels:
    """The read models a correct writer would hold after the verified events (``log_head``: the
    log's size, root and last integration time as the audit computed them; None when the log
    itself has findings, which a log-head difference would only restate)."""
    heads, leaf_of = _heads(checker, skip)
    conn, tx = _scratch()
    try:
        write_read_models(tx, _Unsigned(), heads, leaf_of)
        models = read_models(tx, live=False)
        models.tracking = log_size - 1 if log_size else None
        cases = sum(1 for case_id in models.case_state if case_id != REGISTRY_CASE_ID)
        models.log_head = (
            None if log_head is None or skip else (*log_head, cases, len(models.releases), READ_MODEL_FORMAT)
        )
        models.macs = {}
    finally:
        conn.close()
    _timeline(checker, parsed, skip, models)
    return models


# --- comparing ---------------------------------------------------------------------------------

_CASE_COLUMNS = ("version", "head_sha256", "status", "category", "updated_leaf", "state", "view", "public_count")


def _public_row(key: str) -> str:
    """How a report names a ``public_releases`` row: a released footage's, or the case's statistics row."""
    return "public_releases statistics" if key == STATISTICS_KEY else f"public_releases footage {key}"


def _case_drift(expected: ReadModels, live: ReadModels, case_id: str) -> list[str]:
    want, have = expected.case_state.get(case_id), live.case_state.get(case_id)
    if want is None or have is None:
        return ["case_state row " + ("missing" if have is None else "without events")]
    drift = [f"case_state.{col}" for col, a, b in zip(_CASE_COLUMNS, want, have, strict=True) if a != b]
    if expected.case_numbers.get(case_id) != live.case_numbers.get(case_id):  # the lookup column
        drift.append("case_state.case_number")
    return drift


def _line_drift(expected: ReadModels, live: ReadModels, skip: set[str]) -> dict[str, list[str]]:
    drift: dict[str, list[str]] = {}
    for key in set(expected.timeline) | set(live.timeline):
        want, have = expected.timeline.get(key), live.timeline.get(key)
        if key[0] in skip or want == have:
            continue
        what = "missing" if have is None else "without event" if want is None else "differs"
        drift.setdefault(key[0], []).append(f"case_timeline seq {key[1]} {what}")
    for link in set(expected.custody) | set(live.custody):
        want_link, have_link = expected.custody.get(link), live.custody.get(link)
        if link[0] not in skip and want_link != have_link:
            what = "missing" if have_link is None else "without event" if want_link is None else "differs"
            drift.setdefault(link[0], []).append(f"case_custody footage {link[1]} step {link[2]} {what}")
    for case_id, footage_id in set(expected.releases) | set(live.releases):
        pair = (case_id, footage_id)
        if case_id not in skip and expected.releases.get(pair) != live.releases.get(pair):
            drift.setdefault(case_id, []).append(_public_row(footage_id))
    return drift


def mac_drift(live: ReadModels, mac: RowMac) -> dict[str | None, list[str]]:
    """Rows whose stored MAC does not check under the service's state key (by case; None: ledger-wide)."""
    drift: dict[str | None, list[str]] = {}
    for case_id, row in live.case_state.items():
        if not mac.valid("case_state", (case_id, *row), live.macs.get(("case_state", case_id))):
            drift.setdefault(case_id, []).append("case_state.mac")
    for (case_id, seq), (leaf_index, entry) in live.timeline.items():
        if not mac.valid("case_timeline", (case_id, seq, leaf_index, entry), live.macs.get(("case_timeline", (case_id, seq)))):
            drift.setdefault(case_id, []).append(f"case_timeline seq {seq} mac")
    for (case_id, footage_id, step), (seq, leaf_index, entry) in live.custody.items():
        link: tuple[Any, ...] = (case_id, footage_id, step, seq, leaf_index, entry)
        if not mac.valid("case_custody", link, live.macs.get(("case_custody", (case_id, footage_id, step)))):
            drift.setdefault(case_id, []).append(f"case_custody footage {footage_id} step {step} mac")
    for (case_id, footage_id), (status, entry, version) in live.releases.items():
        fields: tuple[Any, ...] = (case_id, footage_id, status, entry, version)
        if not mac.valid("public_release", fields, live.macs.get(("public_releases", (case_id, footage_id)))):
            drift.setdefault(case_id, []).append(f"{_public_row(footage_id)} mac")
    if live.tracking is not None and not mac.valid(
        "tracking", (TRACKING_NAME, live.tracking), live.macs.get(("projection_tracking", TRACKING_NAME))
    ):
        drift.setdefault(None, []).append("projection_tracking mac")
    if live.log_head is not None and not mac.valid("log_head", live.log_head, live.macs.get(("log_head", 1))):
        drift.setdefault(None, []).append("log_head mac")
    return drift


def compare_read_models(
    expected: ReadModels, live: ReadModels, skip: set[str], mac: RowMac | None = None
) -> list[Finding]:
    """One PROJECTION_DRIFT per case (and one for the ledger-wide rows) naming what differs."""
    drift: dict[str | None, list[str]] = {}
    drift.update(_line_drift(expected, live, skip))
    for case_id in set(expected.case_state) | set(live.case_state):
        if case_id not in skip:
            columns = _case_drift(expected, live, case_id)
            if columns:
                drift[case_id] = columns + drift.get(case_id, [])
    if mac is not None:  # a row whose content already differs needs no second word about its MAC
        for stream, what in mac_drift(live, mac).items():
            if stream not in drift and (stream is None or stream not in skip):
                drift[stream] = what
    if live.tracking != expected.tracking:
        drift.setdefault(None, []).append(
            f"{TRACKING_NAME} position is {live.tracking}, the log ends at {expected.tracking}"
        )
    if expected.log_head is not None and live.log_head != expected.log_head:
        drift.setdefault(None, []).append("log_head differs from the log's size, root or last time")
    return [
        Finding(
            "PROJECTION_DRIFT",
            11,
            "read model differs from the rebuild: " + ", ".join(sorted(what)[:6]),
            case_id=case_id,
            evidence={"differences": sorted(what)},
        )
        for case_id, what in sorted(drift.items(), key=lambda item: item[0] or "")
    ]
