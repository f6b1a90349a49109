"""Read-only access to everything the audit checks: from the database with plain SQL, or from a server.

The database reader runs one read-only transaction (PostgreSQL: REPEATABLE READ, so every table is
read from one snapshot; SQLite: one WAL snapshot) and reads each table on its own — the events
table and ``log_entries`` separately, never joined — exactly as stored. It writes nothing.

The server reader uses ``GET /v1/log/envelopes?after=&limit=`` (pages ``{items, next}`` of
``{leaf_index, case_id, seq, envelope, leaf}``) and ``GET /v1/log/entries/{index}`` (exact leaf bytes)
with a bearer token, and ``GET /v1/log/checkpoint``, through :class:`ledger.client.Transport` (an
unreachable server is ``SERVER_UNREACHABLE``, a refusal ``UNUSABLE_INPUT``). A server shows only
logged envelopes and no read models, so unlogged events, tree nodes and projections are not checked
in that mode.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from domain.errors import LedgerError
from ledger.audit.timestamps import TimestampRow
from ledger.client import Transport, error_from_response
from ledger.storage.integrity import RowMac
from ledger.storage.sql import Database, Tx
from ledger.tokens import tampered_tokens
from ledger.verify import CheckpointInput, EventRow, LogRow

Progress = Callable[[str, int, int | None], None]
FETCH = 5000
SERVER_PAGE = 1000
SERVER_THREADS = 16


class AuditInputError(LedgerError):
    """The audit cannot read its input (exit 2)."""

    code = "UNUSABLE_INPUT"


@dataclass
class ReadModels:
    """The live read models, row by row as stored (content columns; their MACs apart)."""

    case_state: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    case_numbers: dict[str, str | None] = field(default_factory=dict)  # case_state.case_number (outside the MAC)
    timeline: dict[tuple[str, int], tuple[int, str]] = field(default_factory=dict)
    custody: dict[tuple[str, str, int], tuple[int, int, str]] = field(default_factory=dict)  # -> seq, leaf, entry
    releases: dict[tuple[str, str], tuple[str, str, int]] = field(default_factory=dict)
    tracking: int | None = None
    log_head: tuple[int, bytes, str, int, int, str] | None = None
    macs: dict[tuple[str, Any], str] = field(default_factory=dict)  # (table, row key) -> stored MAC


@dataclass(frozen=True)
class AccessRow:
    """One access_entries row as stored: the exact entry bytes and the columns kept beside them."""

    index: int
    entry: bytes
    case_id: str | None
    actor: str
    action: str
    outcome: str
    recorded_at: str


@dataclass
class AccessInput:
    """The access log as stored: entries, tree nodes, checkpoints (with their stored size/root)."""

    entries: list[AccessRow]
    nodes: dict[tuple[int, int], bytes]
    checkpoints: list[CheckpointInput]


@dataclass
class AuditInput:
    source: str
    log: list[LogRow]
    events: list[EventRow]
    checkpoints: list[CheckpointInput]
    nodes: dict[tuple[int, int], bytes] | None = None
    read_models: ReadModels | None = None
    all_events: bool = True  # False when only logged events could be seen (server mode)
    checkpoint_times: dict[int, str] = field(default_factory=dict)  # size -> signed_at, as stored
    tampered_tokens: list[Any] | None = None  # token rows failing their MAC (None: not checked)
    access: AccessInput | None = None  # the access log (None: not readable from this source)
    timestamps: list[Any] | None = None  # log_timestamps rows (TimestampRow; None: not readable from this source)


def _noop(_phase: str, _done: int, _total: int | None) -> None:
    return None


# --- database ---------------------------------------------------------------------------------


#: what a number column that holds no number reads as (SQLite keeps whatever a DBA writes into it):
#: no real row has it, so the audit names the row as drift instead of failing on it
NOT_A_NUMBER = -1


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return NOT_A_NUMBER


def _rows(tx: Tx, sql: str) -> Iterator[tuple[Any, ...]]:
    cursor = tx.raw
    cursor.execute(sql)
    while True:
        chunk = cursor.fetchmany(FETCH)
        if not chunk:
            return
        for row in chunk:
            yield tuple(row)


def _case_id(value: Any) -> str:
    """The canonical case id of an events-table key (SQLite keeps uuid.hex, PostgreSQL a uuid)."""
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        return str(value)


def _count(tx: Tx, table: str) -> int:
    row = tx.one(f"SELECT COUNT(*) FROM {table}")
    return int(row[0]) if row else 0


def _read_log(tx: Tx, progress: Progress) -> list[LogRow]:
    total = _count(tx, "log_entries")
    log: list[LogRow] = []
    sql = (
        "SELECT leaf_index, leaf, event_id, case_id, seq, event_type, envelope_sha256, integrated_at"
        " FROM log_entries ORDER BY leaf_index"
    )
    for i, r in enumerate(_rows(tx, sql), 1):
        log.append(
            LogRow(int(r[0]), bytes(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), str(r[6]), str(r[7]))
        )
        if i % FETCH == 0:
            progress("log entries", i, total)
    progress("log entries", len(log), total)
    return log


def _read_events(tx: Tx, table: str, progress: Progress) -> list[EventRow]:
    total = _count(tx, table)
    events: list[EventRow] = []
    for i, r in enumerate(_rows(tx, f"SELECT originator_id, originator_version, state FROM {table}"), 1):
        events.append(EventRow(_case_id(r[0]), int(r[1]), b"" if r[2] is None else bytes(r[2])))
        if i % FETCH == 0:
            progress("events", i, total)
    progress("events", len(events), total)
    return events


def _read_checkpoints(tx: Tx) -> list[CheckpointInput]:
    lines: dict[int, list[str]] = {}
    for size, line in tx.query("SELECT size, line FROM log_cosignatures ORDER BY size, witness"):
        lines.setdefault(int(size), []).append(str(line))
    return [
        CheckpointInput(
            (str(note) + "".join(lines.get(int(size), []))).encode("utf-8"),
            "database",
            size=int(size),
            root=bytes(root),
        )
        for size, root, note in tx.query("SELECT size, root, note FROM log_checkpoints ORDER BY size")
    ]


def read_access(tx: Tx) -> AccessInput:
    """The access log's tables, each read on its own, exactly as stored."""
    entries = [
        AccessRow(int(r[0]), bytes(r[1]), None if r[2] is None else str(r[2]), str(r[3]), str(r[4]), str(r[5]),
                  str(r[6]))
        for r in _rows(
            tx,
            "SELECT entry_index, entry, case_id, actor, action, outcome, recorded_at FROM access_entries"
            " ORDER BY entry_index",
        )
    ]
    nodes = {(int(r[0]), int(r[1])): bytes(r[2]) for r in _rows(tx, "SELECT level, idx, hash FROM access_nodes")}
    checkpoints = [
        CheckpointInput(str(note).encode("utf-8"), "database (access log)", size=int(size), root=bytes(root))
        for size, root, note in tx.query("SELECT size, root, note FROM access_checkpoints ORDER BY size")
    ]
    return AccessInput(entries, nodes, checkpoints)


def read_models(tx: Tx, *, live: bool = True) -> ReadModels:
    """The read-model rows of one database: the live one, or (``live=False``) the audit's scratch
    rebuild, which holds only case state and public releases."""
    models = ReadModels()
    for r in _rows(
        tx,
        "SELECT case_id, version, head_sha256, status, category, updated_leaf, state, view, public_count, mac,"
        " case_number FROM case_state",
    ):
        models.case_numbers[str(r[0])] = None if r[10] is None else str(r[10])
        models.case_state[str(r[0])] = (
            _int(r[1]), str(r[2]), str(r[3]), str(r[4]), _int(r[5]), str(r[6]), str(r[7]), _int(r[8])
        )
        models.macs[("case_state", str(r[0]))] = str(r[9])
    for r in _rows(tx, "SELECT case_id, seq, leaf_index, entry, mac FROM case_timeline") if live else ():
        models.timeline[(str(r[0]), _int(r[1]))] = (_int(r[2]), str(r[3]))
        models.macs[("case_timeline", (str(r[0]), _int(r[1])))] = str(r[4])
    if live:
        for r in _rows(tx, "SELECT case_id, footage_id, step, seq, leaf_index, entry, mac FROM case_custody"):
            models.custody[(str(r[0]), str(r[1]), _int(r[2]))] = (_int(r[3]), _int(r[4]), str(r[5]))
            models.macs[("case_custody", (str(r[0]), str(r[1]), _int(r[2])))] = str(r[6])
    for r in _rows(tx, "SELECT case_id, footage_id, status, entry, version, mac FROM public_releases"):
        models.releases[(str(r[0]), str(r[1]))] = (str(r[2]), str(r[3]), _int(r[4]))
        models.macs[("public_releases", (str(r[0]), str(r[1])))] = str(r[5])
    if live:
        row = tx.one("SELECT position, mac FROM projection_tracking WHERE name = 'read_models'")
        models.tracking = None if row is None else int(row[0])
        if row is not None:
            models.macs[("projection_tracking", "read_models")] = str(row[1])
        head = tx.one(
            "SELECT size, root, integrated_at, cases, public_releases, read_models, mac FROM log_head WHERE id = 1"
        )
        if head is not None:
            models.log_head = (int(head[0]), bytes(head[1]), str(head[2]), int(head[3]), int(head[4]), str(head[5]))
            models.macs[("log_head", 1)] = str(head[6])
    return models


def read_database(db: Database, *, progress: Progress = _noop, mac: RowMac | None = None) -> AuditInput:
    """Everything the audit needs, from one read-only snapshot of the database (with the service's
    state key ``mac``, also the token rows that fail their integrity check)."""
    with db.read() as tx:
        if tx.postgres:
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        log = _read_log(tx, progress)
        events = _read_events(tx, db.events_table, progress)
        nodes = {
            (int(r[0]), int(r[1])): bytes(r[2]) for r in _rows(tx, "SELECT level, idx, hash FROM log_nodes")
        }
        progress("tree nodes", len(nodes), len(nodes))
        checkpoints = _read_checkpoints(tx)
        times = {int(r[0]): str(r[1]) for r in tx.query("SELECT size, signed_at FROM log_checkpoints")}
        models = read_models(tx)
        progress("read models", len(models.case_state), len(models.case_state))
        tokens = None if mac is None else tampered_tokens(tx, mac)
        access = read_access(tx)
        progress("access log", len(access.entries), len(access.entries))
        stamps = [
            TimestampRow(_int(r[0]), str(r[1]), bytes(r[2]), str(r[3]))
            for r in tx.query("SELECT size, tsa, token, received_at FROM log_timestamps ORDER BY size, tsa")
        ]
    return AuditInput(
        "database", log, events, checkpoints, nodes, models, checkpoint_times=times, tampered_tokens=tokens,
        access=access, timestamps=stamps,
    )


# --- server -----------------------------------------------------------------------------------


def _get(http: Transport, path: str, **params: Any) -> httpx.Response:
    """GET one resource; a refusal is unusable input (an unreachable server: SERVER_UNREACHABLE)."""
    response = http.request("GET", path, params=params or None)
    if response.status_code != 200:
        refused = error_from_response(response)
        raise AuditInputError(
            f"GET {path} answered {response.status_code} ({refused.code}: {refused.message})",
            status=response.status_code,
        )
    return response


def _envelope_page(http: Transport, after: int | None) -> tuple[list[dict[str, Any]], int | None]:
    params: dict[str, Any] = {"limit": SERVER_PAGE} if after is None else {"after": after, "limit": SERVER_PAGE}
    data = _get(http, "/v1/log/envelopes", **params).json()
    items: Any = data.get("items") if isinstance(data, dict) else None
    following: Any = data.get("next") if isinstance(data, dict) else None
    ok = isinstance(items, list) and all(
        isinstance(d, dict)
        and type(d.get("leaf_index")) is int
        and (d.get("envelope") is None or isinstance(d.get("envelope"), str))  # null: the event row is gone
        and (d.get("leaf") is None or isinstance(d.get("leaf"), str))
        and isinstance(d.get("case_id"), str)
        and type(d.get("seq")) is int
        for d in items
    )
    # a next page must start after this one (never loop on a server that repeats itself)
    ok = ok and (following is None or (type(following) is int and bool(items) and following >= items[-1]["leaf_index"]))
    if not ok:
        raise AuditInputError(
            "GET /v1/log/envelopes did not return a page {items: [{leaf_index, case_id, seq, envelope, leaf}],"
            " next}"
        )
    return items, following


def _server_envelopes(http: Transport, progress: Progress) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        previous = after
        page, after = _envelope_page(http, after)
        if after is not None and previous is not None and after <= previous:
            raise AuditInputError("GET /v1/log/envelopes returned a next page that does not move forward")
        items += page
        if page:
            progress("envelopes", len(items), None)
        if after is None:
            return items


def _server_leaves(http: Transport, indexes: list[int], progress: Progress) -> dict[int, bytes]:
    leaves: dict[int, bytes] = {}

    def fetch(index: int) -> tuple[int, bytes]:
        return index, _get(http, f"/v1/log/entries/{index}").content

    with ThreadPoolExecutor(max_workers=SERVER_THREADS) as pool:
        for n, (index, leaf) in enumerate(pool.map(fetch, indexes), 1):
            leaves[index] = leaf
            if n % 500 == 0 or n == len(indexes):
                progress("leaves", n, len(indexes))
    return leaves


def read_server(
    url: str, token: str, *, progress: Progress = _noop, client: httpx.Client | None = None
) -> AuditInput:
    """Everything a server shows an auditor: logged envelopes, exact leaves, the latest checkpoint."""
    with Transport(url, headers={"Authorization": f"Bearer {token}"}, client=client) as http:
        items = _server_envelopes(http, progress)
        # Leaves come with each page; older servers without them are asked one entry at a time.
        leaves = {d["leaf_index"]: d["leaf"].encode("utf-8") for d in items if d.get("leaf") is not None}
        missing = [d["leaf_index"] for d in items if d["leaf_index"] not in leaves]
        leaves.update(_server_leaves(http, missing, progress))
        checkpoint = http.request("GET", "/v1/log/checkpoint")
    log = [
        LogRow(d["leaf_index"], leaves[d["leaf_index"]], case_id=d["case_id"], seq=d["seq"]) for d in items
    ]
    events = [EventRow(d["case_id"], d["seq"], d["envelope"].encode("utf-8")) for d in items if d["envelope"]]
    checkpoints = []
    if checkpoint.status_code == 200:
        checkpoints.append(CheckpointInput(checkpoint.content, "server (latest)"))
    return AuditInput(f"server {url}", log, events, checkpoints, all_events=False)


def server_verifier_key(url: str, *, client: httpx.Client | None = None) -> str:
    """The log key as the server states it (not an independent trust anchor)."""
    with Transport(url, client=client) as http:
        return _get(http, "/v1/log/key").text.strip()


# --- incremental reads (the monitor, ledger.audit.follow) ----------------------------------------


@dataclass(frozen=True)
class LogItem:
    """One log position as a source shows it: the entry's columns, its envelope (None: no event row)
    and its exact leaf bytes (None: the source could not give them)."""

    leaf_index: int
    case_id: str
    seq: int
    envelope: bytes | None
    leaf: bytes | None


def read_log_page(db: Database, after: int | None, limit: int) -> list[LogItem]:
    """Log entries with leaf_index > ``after`` (all when None), in leaf order, at most ``limit``, each
    with the envelope stored under its (case, seq) — one read-only transaction."""
    start = 0 if after is None else after + 1
    with db.read() as tx:
        rows = tx.query(
            "SELECT e.leaf_index, e.case_id, e.seq, e.leaf, s.state FROM log_entries e"
            f" LEFT JOIN {db.events_table} s ON s.originator_id = {db.case_key_sql('e.case_id')}"
            " AND s.originator_version = e.seq WHERE e.leaf_index >= ? ORDER BY e.leaf_index LIMIT ?",
            (start, limit),
        )
    return [
        LogItem(int(i), str(c), _int(q), None if env is None else bytes(env), bytes(leaf))
        for i, c, q, leaf, env in rows
    ]


def read_checkpoint(db: Database, size: int | None = None) -> bytes | None:
    """The stored checkpoint note of ``size`` (default: the largest), with every stored cosignature
    line appended, exactly as stored; None when there is none."""
    with db.read() as tx:
        if size is None:
            row = tx.one("SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
        else:
            row = tx.one("SELECT size, note FROM log_checkpoints WHERE size = ?", (size,))
        if row is None:
            return None
        lines = [
            str(line)
            for (line,) in tx.query("SELECT line FROM log_cosignatures WHERE size = ? ORDER BY witness", (int(row[0]),))
        ]
    return (str(row[1]) + "".join(lines)).encode("utf-8")
