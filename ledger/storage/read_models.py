"""The read models: case state (decision state and view), timeline, custody links, public rows
(releases and the statistics' inputs), the log head.

Written in the same transaction as the events they reflect (``ledger/append.py``), rebuilt from the
log by ``ledger/projection.py`` and by the audit's scratch rebuild; never evidence.

Every row carries a MAC (``ledger/integrity.py``) and is checked when read back: a row must be one
the service wrote (its MAC checks) and the current one (its version and head hash are those of the
case's last log entry; the log head's size is the log's size). The log tables are append-only (the
PostgreSQL triggers stop every role), so an edited or restored read-model row can no longer agree
with them. The log head also counts the cases and the public release rows, so a deleted row is
missed too. A row that fails raises ``StateTampered``: the service refuses to act on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain import case as case_rules
from domain import projections, registry
from domain.case_state import case_number_key
from domain.context import EventContext
from domain.errors import NotFoundError, case_not_found
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.storage.integrity import RowMac, StateTampered, tampered
from ledger.storage.sql import Tx

TRACKING_NAME = "read_models"
CASE_COLUMNS = "case_id, version, head_sha256, status, category, updated_leaf, state, view, public_count, mac"
# ``public_count`` (per case) and the log head's ``public_releases`` count the rows of ``public_releases``:
# release rows and statistics rows alike (:func:`public_rows`).
LOG_HEAD_COLUMNS = "size, root, integrated_at, cases, public_releases, read_models, mac"
#: Bump when the stored view, timeline, custody or public release formats change; the decision
#: states' format is fingerprinted from their classes (:func:`read_model_format`). 2: public rows are
#: released footage only (the release's own fields) plus one statistics row per case. 3: a footage
#: item's chain of custody is rows of their own (``case_custody``); the view has its length and link.
VIEW_FORMAT = 3


def read_model_format() -> str:
    """The format of the read models this code writes and reads: the view format and a fingerprint of
    the stored decision states' fields (the case state, the key registry and every nested record). A
    database whose read models were written in another format is rebuilt (``replay``) before use."""
    def describe(cls: Any) -> dict[str, Any]:
        nested = getattr(cls, "NESTED", {})
        return {
            "name": cls.__name__,
            "fields": sorted(f.name for f in dataclasses.fields(cls)),
            "nested": {key: describe(kind) for key, kind in sorted(nested.items())},
        }

    description = json.dumps(
        [describe(case_rules.CaseState), describe(registry.KeyRegistryState)], sort_keys=True
    )
    return f"{VIEW_FORMAT}.{hashlib.sha256(description.encode('utf-8')).hexdigest()[:16]}"


READ_MODEL_FORMAT = read_model_format()


@dataclass
class CaseHead:
    version: int
    head_sha256: str
    state: Any  # CaseState or KeyRegistryState
    public: int = 0  # public_releases rows of this state (releases and statistics)


@dataclass(frozen=True)
class LogHead:
    """The log's size, root and last integration time as the service last wrote them, with the
    number of cases and of public release rows the read models then held."""

    size: int
    root: bytes
    integrated_at: str
    cases: int = 0
    public_releases: int = 0
    read_models: str = READ_MODEL_FORMAT  # the format the read models were written in

    def fields(self) -> tuple[int, bytes, str, int, int, str]:
        return (self.size, self.root, self.integrated_at, self.cases, self.public_releases, self.read_models)


def load_state(case_id: str, state_json: str) -> Any:
    data = json.loads(state_json)
    if case_id == REGISTRY_CASE_ID:
        return registry.KeyRegistryState.from_json(data)
    return case_rules.CaseState.from_json(data)


def stream_name(case_id: str) -> str:
    return "the key registry" if case_id == REGISTRY_CASE_ID else f"case {case_id}"


def stream_refs(case_id: str) -> dict[str, str]:
    """What a refusal may name: the case id, or that it is the registry."""
    return {"stream": "registry"} if case_id == REGISTRY_CASE_ID else {"case_id": case_id}


def _case_tampered(case_id: str, check: str) -> StateTampered:
    return tampered(stream_name(case_id), check=check, **stream_refs(case_id))


# --- writing ------------------------------------------------------------------------------------

#: the key of a case's statistics row in ``public_releases`` (never a footage id: ids cannot hold ``*``)
STATISTICS_KEY = "*"
RELEASED = "released"
STATISTICS = "statistics"


def public_rows(state: Any) -> list[tuple[str, str, Any]]:
    """A case's rows in ``public_releases`` as (key, status, entry): one per released footage (its
    public release entries) and, when the case has footage, one ``statistics`` row (what the monthly
    counts need of each footage, without ids). An unreleased item has no row of its own."""
    rows: list[tuple[str, str, Any]] = []
    for footage in state.footage:
        released = projections.public_release_entries(state, footage.footage_id)
        if released:
            rows.append((footage.footage_id, RELEASED, released))
    if state.footage:
        rows.append((STATISTICS_KEY, STATISTICS, projections.statistics_entries(state)))
    return rows


def write_read_models(tx: Tx, mac: RowMac, heads: Mapping[str, CaseHead], leaf_of: Mapping[str, int]) -> None:
    """Upsert the case-state rows and the public release rows of the given cases; sets each head's
    ``public`` count."""
    rows = []
    releases: list[tuple[Any, ...]] = []
    for case_id, head in heads.items():
        state_json = json.dumps(head.state.to_json(), sort_keys=True, separators=(",", ":"))
        public = 0
        number = None
        if case_id == REGISTRY_CASE_ID:
            status, category, view = "registry", "registry", state_json
        else:
            view_data = projections.case_view(head.state)
            status, category = view_data["status"], view_data["category"]
            number = case_number_key(view_data["case_number"])
            view = json.dumps(view_data, sort_keys=True, separators=(",", ":"))
            for key, public_status, entry in public_rows(head.state):
                release = (case_id, key, public_status, json.dumps(entry, sort_keys=True))
                releases.append((*release, head.version, mac.mac("public_release", (*release, head.version))))
                public += 1
        head.public = public
        fields = (
            case_id, head.version, head.head_sha256, status, category, leaf_of[case_id], state_json, view, public,
        )
        rows.append((*fields, mac.mac("case_state", fields), number))
    tx.executemany(
        f"INSERT INTO case_state ({CASE_COLUMNS}, case_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (case_id) DO UPDATE SET version = excluded.version,"
        " head_sha256 = excluded.head_sha256, status = excluded.status, category = excluded.category,"
        " updated_leaf = excluded.updated_leaf, state = excluded.state, view = excluded.view,"
        " public_count = excluded.public_count, mac = excluded.mac, case_number = excluded.case_number",
        rows,
    )
    # A case's public rows are replaced whole: footage that stopped being eligible (a new hold) must vanish.
    tx.executemany(
        "DELETE FROM public_releases WHERE case_id = ?", [(cid,) for cid in heads if cid != REGISTRY_CASE_ID]
    )
    tx.executemany(
        "INSERT INTO public_releases (case_id, footage_id, status, entry, version, mac) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (case_id, footage_id) DO UPDATE SET status = excluded.status, entry = excluded.entry,"
        " version = excluded.version, mac = excluded.mac",
        releases,
    )


def timeline_row(mac: RowMac, case_id: str, seq: int, leaf_index: int, entry: dict[str, Any]) -> tuple[Any, ...]:
    fields = (case_id, seq, leaf_index, json.dumps(entry, sort_keys=True))
    return (*fields, mac.mac("case_timeline", fields))


def write_timeline(tx: Tx, rows: Sequence[tuple[Any, ...]], *, replace: bool = False) -> None:
    """Insert timeline lines made by :func:`timeline_row` (``replace``: a rebuild overwrites)."""
    sql = "INSERT INTO case_timeline (case_id, seq, leaf_index, entry, mac) VALUES (?, ?, ?, ?, ?)"
    if replace:
        sql += (
            " ON CONFLICT (case_id, seq) DO UPDATE SET leaf_index = excluded.leaf_index,"
            " entry = excluded.entry, mac = excluded.mac"
        )
    tx.executemany(sql, rows)


CUSTODY_COLUMNS = "case_id, footage_id, step, seq, leaf_index, entry, mac"


def custody_row(
    mac: RowMac, case_id: str, footage_id: str, step: int, seq: int, leaf_index: int, entry: dict[str, Any]
) -> tuple[Any, ...]:
    """One link of a footage item's chain of custody (``step``: its number in the chain, from 1)."""
    fields = (case_id, footage_id, step, seq, leaf_index, json.dumps({**entry, "step": step}, sort_keys=True))
    return (*fields, mac.mac("case_custody", fields))


def write_custody(tx: Tx, rows: Sequence[tuple[Any, ...]], *, replace: bool = False) -> None:
    """Insert custody links made by :func:`custody_row` (``replace``: a rebuild overwrites)."""
    sql = f"INSERT INTO case_custody ({CUSTODY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    if replace:
        sql += (
            " ON CONFLICT (case_id, footage_id, step) DO UPDATE SET seq = excluded.seq,"
            " leaf_index = excluded.leaf_index, entry = excluded.entry, mac = excluded.mac"
        )
    tx.executemany(sql, rows)


@dataclass
class CaseLines:
    """The rows events add to their cases' long lists, one row per event and never rewritten: a
    timeline line for every case event, and a custody link for each event that adds one. The case
    state only counts them, so an append costs the same however long a case has grown."""

    timeline: list[tuple[Any, ...]] = field(default_factory=list)
    custody: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, mac: RowMac, event: Any, ctx: EventContext, state: Any) -> None:
        """The rows of one decided case event (``state``: the case's state after it; ``ctx`` carries
        the event's leaf index)."""
        assert ctx.leaf_index is not None
        entry = projections.timeline_entry(event, ctx)
        self.timeline.append(timeline_row(mac, ctx.case_id, ctx.seq, ctx.leaf_index, entry))
        link = projections.custody_entry(event, ctx)
        if link is not None:
            footage_id, step = link
            footage = state.footage_by_id(footage_id)
            assert footage is not None  # the event's rules required it (or made it)
            self.custody.append(
                custody_row(mac, ctx.case_id, footage_id, footage.custody_steps, ctx.seq, ctx.leaf_index, step)
            )

    def write(self, tx: Tx, *, replace: bool = False) -> None:
        write_timeline(tx, self.timeline, replace=replace)
        write_custody(tx, self.custody, replace=replace)


def write_position(tx: Tx, mac: RowMac, position: int, head: LogHead) -> None:
    """The tracked position (last leaf folded into the read models) and the log head."""
    tx.execute(
        "INSERT INTO projection_tracking (name, position, mac) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET position = excluded.position, mac = excluded.mac",
        (TRACKING_NAME, position, mac.mac("tracking", (TRACKING_NAME, position))),
    )
    tx.execute(
        f"INSERT INTO log_head (id, {LOG_HEAD_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET size = excluded.size, root = excluded.root,"
        " integrated_at = excluded.integrated_at, cases = excluded.cases,"
        " public_releases = excluded.public_releases, read_models = excluded.read_models, mac = excluded.mac",
        (*head.fields(), mac.mac("log_head", head.fields())),
    )


# --- reading back, checked ----------------------------------------------------------------------


Top = tuple[int, str]  # (seq, envelope sha256) of a stream's last log entry


def log_tops(tx: Tx, case_ids: Iterable[str]) -> dict[str, Top]:
    """(seq, envelope hash) of each case's last log entry (cases without entries are absent).

    ``log_entries`` is append-only, so this is the freshness reference for every case row."""
    ordered = sorted(set(case_ids))
    if not ordered:
        return {}
    # Driven by the asked ids (VALUES names its column ``column1`` on both backends), so each case costs
    # one index probe for its last seq and one for that entry, however many entries it has. (Filtering
    # the entries by case first made PostgreSQL visit every entry of the case: O(case size) per append.)
    values = ",".join(["(?)"] * len(ordered))
    rows = tx.query(
        f"SELECT e.case_id, e.seq, e.envelope_sha256 FROM (VALUES {values}) AS c JOIN log_entries e"
        " ON e.case_id = c.column1"
        " AND e.seq = (SELECT MAX(m.seq) FROM log_entries m WHERE m.case_id = c.column1)",
        ordered,
    )
    return {str(r[0]): (int(r[1]), str(r[2])) for r in rows}


def checked_case_row(mac: RowMac, row: Sequence[Any], top: Top | None) -> tuple[Any, ...]:
    """A case_state row (``CASE_COLUMNS`` order) after its MAC and freshness checks."""
    case_id = str(row[0])
    try:
        fields = (
            case_id, int(row[1]), str(row[2]), str(row[3]), str(row[4]), int(row[5]), str(row[6]), str(row[7]),
            int(row[8]),
        )
    except (TypeError, ValueError):  # a column of the wrong type: never believed, never echoed
        raise _case_tampered(case_id, "types") from None
    if not mac.valid("case_state", fields, row[9]):
        raise _case_tampered(case_id, "mac")
    if top is None or (fields[1], fields[2]) != top:
        raise _case_tampered(case_id, "version")
    return fields


def case_heads(
    tx: Tx, mac: RowMac, tops: Mapping[str, Top], broken: dict[str, StateTampered] | None = None
) -> dict[str, CaseHead]:
    """The checked heads (decision states) of cases that have log entries. A row that fails its
    check raises StateTampered, or (with ``broken``) is left out and its error put there."""
    if not tops:
        return {}
    ordered = sorted(tops)
    marks = ",".join("?" * len(ordered))
    rows = {str(r[0]): r for r in tx.query(f"SELECT {CASE_COLUMNS} FROM case_state WHERE case_id IN ({marks})", ordered)}
    heads = {}
    for case_id in ordered:
        try:
            row = rows.get(case_id)
            if row is None:
                raise _case_tampered(case_id, "missing")
            fields = checked_case_row(mac, row, tops[case_id])
            heads[case_id] = CaseHead(fields[1], fields[2], load_state(case_id, fields[6]), fields[8])
        except StateTampered as exc:
            if broken is None:
                raise
            broken[case_id] = exc
    return heads


_TOP_SQL = (
    "(SELECT seq FROM log_entries l WHERE l.case_id = case_state.case_id ORDER BY seq DESC LIMIT 1),"
    " (SELECT envelope_sha256 FROM log_entries l WHERE l.case_id = case_state.case_id ORDER BY seq DESC LIMIT 1)"
)


def _top_of(row: Sequence[Any]) -> Top | None:
    return None if row[0] is None else (int(row[0]), str(row[1]))


def case_row(tx: Tx, mac: RowMac, case_id: str) -> tuple[Any, ...] | None:
    """The checked case_state row of one case (or the registry); None when the log has no entry for it.

    A row for a stream the log does not know is a tamper, as is a stream the log knows without a row."""
    row = tx.one(f"SELECT {CASE_COLUMNS}, {_TOP_SQL} FROM case_state WHERE case_id = ?", (case_id,))
    if row is None:
        if log_tops(tx, [case_id]):
            raise _case_tampered(case_id, "missing")
        return None
    return checked_case_row(mac, row[:10], _top_of(row[10:]))


def case_rows(tx: Tx, mac: RowMac, where: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Checked case_state rows matching ``where`` (a SQL condition on case_state columns), after
    checking that no case row is missing (their number is the log head's)."""
    head, _ = log_head(tx, mac)
    present = tx.one("SELECT COUNT(*) FROM case_state WHERE case_id <> ?", (REGISTRY_CASE_ID,))
    if int(present[0] if present else 0) != (0 if head is None else head.cases):
        raise tampered("the case list", check="count", stream="cases")
    rows = tx.query(f"SELECT {CASE_COLUMNS}, {_TOP_SQL} FROM case_state WHERE {where}", params)
    return [checked_case_row(mac, r[:10], _top_of(r[10:])) for r in rows]


def case_number_holders(tx: Tx, mac: RowMac, numbers: Iterable[str]) -> dict[str, str | StateTampered]:
    """For each of ``numbers`` (keys: ``case_number_key``) that a case was opened with: that case's id (the
    first, in case id order), found by the ``case_number`` lookup column (which holds the key) in one query. The column is only an index
    key, outside the row's MAC: each row found is checked like every case row (its MAC, and its
    version is the case's last log entry) and its MAC'd view must carry the number, else the number
    maps to the ``StateTampered`` refusal naming that case (a planted number never blocks a case
    unnoticed). A row deleted, or whose column was changed, is not found here: every read and list
    refuses while a row is missing (the log head counts them), and the audit names both
    (``PROJECTION_DRIFT``) and any number two cases' signed ``CaseOpened`` events share
    (``DUPLICATE_CASE_NUMBER``). See docs/design.md, "One case per case number"."""
    ordered = sorted(set(numbers))
    if not ordered:
        return {}
    marks = ",".join("?" * len(ordered))
    rows = tx.query(
        f"SELECT {CASE_COLUMNS}, {_TOP_SQL}, case_number FROM case_state"
        f" WHERE case_number IN ({marks}) AND case_id <> ? ORDER BY case_id",
        (*ordered, REGISTRY_CASE_ID),
    )
    holders: dict[str, str | StateTampered] = {}
    for row in rows:
        number = str(row[12])
        if number in holders:
            continue
        try:
            fields = checked_case_row(mac, row[:10], _top_of(row[10:12]))
            signed = json.loads(fields[7]).get("case_number")
            if not isinstance(signed, str) or case_number_key(signed) != number:
                raise _case_tampered(fields[0], "case_number")
            holders[number] = fields[0]
        except StateTampered as exc:
            holders[number] = exc
    return holders


def timeline_lines(
    tx: Tx, mac: RowMac, case_id: str, *, after: int, limit: int, top: int
) -> list[dict[str, Any]]:
    """Checked timeline lines with seq > ``after``: each MAC checks, none is missing (the lines run
    ``after+1, after+2, …`` up to the page size or to the case's last seq ``top``)."""
    rows = tx.query(
        "SELECT case_id, seq, leaf_index, entry, mac FROM case_timeline WHERE case_id = ? AND seq > ?"
        " ORDER BY seq LIMIT ?",
        (case_id, after, limit),
    )
    lines = []
    for expected, row in enumerate(rows, after + 1):
        try:
            fields = (str(row[0]), int(row[1]), int(row[2]), str(row[3]))
        except (TypeError, ValueError):
            raise _case_tampered(case_id, "timeline") from None
        if fields[1] != expected or not mac.valid("case_timeline", fields, row[4]):
            raise _case_tampered(case_id, "timeline")
        lines.append(json.loads(fields[3]))
    if len(rows) < limit and after + len(rows) < top:
        raise _case_tampered(case_id, "timeline")
    return lines


def custody_links(
    tx: Tx, mac: RowMac, case_id: str, footage_id: str, *, after: int, limit: int
) -> list[dict[str, Any]]:
    """Checked links of a footage item's chain of custody with step > ``after``, at most ``limit``.

    The chain's length comes from the case's checked state row (its MAC, and its version must be the
    case's last log entry); every link up to it must be there, in order, each with its MAC. So an
    edited, planted or deleted link raises StateTampered; a link written after the state was read
    is not served. NotFoundError when the case or the footage does not exist."""
    fields = case_row(tx, mac, case_id) if case_id != REGISTRY_CASE_ID else None
    if fields is None:
        raise case_not_found(case_id)
    footage = load_state(case_id, fields[6]).footage_by_id(footage_id)
    if footage is None:
        raise NotFoundError("no footage with this id in the case", code="FOOTAGE_NOT_FOUND", footage_id=footage_id)
    last = int(footage.custody_steps)
    rows = tx.query(
        f"SELECT {CUSTODY_COLUMNS} FROM case_custody WHERE case_id = ? AND footage_id = ? AND step > ?"
        " AND step <= ? ORDER BY step LIMIT ?",
        (case_id, footage_id, after, last, limit),
    )
    links = []
    for expected, row in enumerate(rows, after + 1):
        try:
            values = (str(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]), str(row[5]))
        except (TypeError, ValueError):
            raise _case_tampered(case_id, "custody") from None
        if values[2] != expected or values[3] > fields[1] or not mac.valid("case_custody", values, row[6]):
            raise _case_tampered(case_id, "custody")
        links.append(json.loads(values[5]))
    if len(rows) < min(limit, max(last - after, 0)):
        raise _case_tampered(case_id, "custody")
    return links


def public_entries(tx: Tx, mac: RowMac, status: str) -> list[Any]:
    """The entries of the ``public_releases`` rows of one kind (:data:`RELEASED` or :data:`STATISTICS`),
    after checking every row of the table, of both kinds: each written by the service for its case's
    current version, and as many as the log head counts (a deleted row is missed). Checking them all
    means no row can be moved from one kind to the other to drop out of an answer unnoticed."""
    head, _ = log_head(tx, mac)
    rows = tx.query(
        "SELECT case_id, footage_id, status, entry, version, mac,"
        " (SELECT MAX(seq) FROM log_entries l WHERE l.case_id = public_releases.case_id)"
        " FROM public_releases ORDER BY case_id, footage_id"
    )
    if len(rows) != (0 if head is None else head.public_releases):
        raise tampered("the public release list", check="count", stream="public_releases")
    entries = []
    for r in rows:
        try:
            fields = (str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]))
        except (TypeError, ValueError):
            raise tampered("the public release list", check="types", stream="public_releases") from None
        if not mac.valid("public_release", fields, r[5]) or r[6] is None or int(r[6]) != fields[4]:
            raise tampered("the public release list", check="public_release", stream="public_releases")
        if fields[2] == status:
            entries.append(json.loads(fields[3]))
    return entries


def tracked_position(tx: Tx, mac: RowMac) -> int:
    """The last leaf folded into the read models (-1 for none), checked."""
    row = tx.one("SELECT name, position, mac FROM projection_tracking WHERE name = ?", (TRACKING_NAME,))
    if row is None:
        return -1
    try:
        position = int(row[1])
    except (TypeError, ValueError):
        position = -2
    if position < -1 or not mac.valid("tracking", (TRACKING_NAME, position), row[2]):
        raise tampered("the read models' tracked position", check="tracking", stream="read_models")
    return position


LOG_HEAD_SELECT = (
    "h.size, h.root, h.integrated_at, h.cases, h.public_releases, h.read_models, h.mac, last.leaf_index"
)
LOG_HEAD_FROM = (
    " FROM (SELECT 1 AS one) AS anchor LEFT JOIN log_head h ON h.id = 1"
    " LEFT JOIN (SELECT leaf_index FROM log_entries ORDER BY leaf_index DESC LIMIT 1) AS last ON 1 = 1"
)
LOG_HEAD_SQL = f"SELECT {LOG_HEAD_SELECT}{LOG_HEAD_FROM}"


LOG_HEAD_WIDTH = 8  # columns of LOG_HEAD_SELECT


def checked_log_head(mac: RowMac, row: Sequence[Any]) -> tuple[LogHead | None, int]:
    """(the checked log head, the log's size) from the first :data:`LOG_HEAD_WIDTH` columns of
    :data:`LOG_HEAD_SQL`.

    The head must be at the log's size: an entry added or removed behind the service's back, or a
    restored older head, fails; None only for an empty log."""
    size = 0 if row[7] is None else int(row[7]) + 1
    if row[0] is None:
        if size:
            raise tampered("the log", check="log_head", stream="log")
        return None, 0
    try:
        head = LogHead(int(row[0]), bytes(row[1]), str(row[2]), int(row[3]), int(row[4]), str(row[5]))
    except (TypeError, ValueError):
        raise tampered("the log", check="log_head", stream="log") from None
    if head.size != size or not mac.valid("log_head", head.fields(), row[6]):
        raise tampered("the log", check="log_head", stream="log")
    return head, size


def log_head(tx: Tx, mac: RowMac) -> tuple[LogHead | None, int]:
    """The checked log head and the log's size (see :func:`checked_log_head`)."""
    row = tx.one(LOG_HEAD_SQL)
    assert row is not None
    return checked_log_head(mac, row)
