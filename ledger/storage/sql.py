"""Transactions and schema for the ledger's own tables, on the eventsourcing datastores.

The ledger reuses the library's connection pools (and its SQLite WAL setup) and runs its own SQL
in the same transactions as the library's event inserts. This module is the only one that reaches
into the library beyond its public API — the raw SQLite connection of a pooled connection, and the
per-backend insert routine (``Database.insert_events``) — because the public API commits events in a
transaction of its own; ``tests/ledger/storage/test_storage_contract.py`` checks, per backend, everything relied
on. SQL is written with ``?`` placeholders; for PostgreSQL they are rewritten to ``%s`` (no
statement of ours contains a literal ``?``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import psycopg
from eventsourcing import persistence as es
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL

from domain.errors import ConflictError, LedgerError
from ledger.settings import ConfigurationError
from ledger.storage import schema


class StorageError(LedgerError):
    """The database failed or is unreachable (maps to 503)."""

    code = "STORAGE_UNAVAILABLE"


Row = tuple[Any, ...]
#: The advisory lock key of the access log's writers (PostgreSQL), a constant of this application.
ACCESS_LOG_LOCK = 0x656C616363657373  # "elaccess"

# The eventsourcing PostgreSQL datastore re-raises driver errors as its own persistence errors.
_INTEGRITY = (psycopg.errors.UniqueViolation, sqlite3.IntegrityError, es.IntegrityError)
_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
    es.OperationalError,
    es.InterfaceError,
)


#: ``VALUES (?, ?, …)`` of an INSERT: on PostgreSQL, ``executemany`` sends it once with every row
_VALUES = re.compile(r"\bVALUES\s*(\(\s*\?(?:\s*,\s*\?)*\s*\))", re.IGNORECASE)
#: a statement holds at most 65,535 parameters (the protocol's limit); rows are sent in chunks below it
_MAX_PARAMS = 60_000


class Tx:
    """A cursor inside one transaction, with one placeholder style for both backends."""

    def __init__(self, cursor: Any, *, postgres: bool) -> None:
        self._cursor = cursor
        self.postgres = postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` once per row. On PostgreSQL an ``INSERT … VALUES (?, …)`` goes as one statement
        with every row in its VALUES list (in chunks under the parameter limit): the server then
        plans and executes one statement per table and batch instead of one per row, which was
        most of a batch's time in the database (docs/performance.md)."""
        if not rows:
            return
        match = _VALUES.search(sql) if self.postgres and len(rows) > 1 else None
        if match is None:
            self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])
            return
        group = match.group(1)
        width = group.count("?")
        chunk = max(1, _MAX_PARAMS // width)
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            values = ", ".join([group] * len(part))
            statement = sql[: match.start(1)] + values + sql[match.end(1) :]
            params: list[Any] = []
            for row in part:
                if len(row) != width:
                    raise ValueError(f"a row has {len(row)} values for {width} placeholders")
                params.extend(row)
            self._cursor.execute(self._sql(statement), params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(self._sql(sql), tuple(params))
        return [tuple(row) for row in self._cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def rowcount(self) -> int:
        """Rows the last statement changed."""
        return int(self._cursor.rowcount)

    @property
    def raw(self) -> Any:
        return self._cursor

    def pipeline(self) -> AbstractContextManager[Any]:
        """PostgreSQL pipeline mode (statements sent without waiting; errors surface at the end)."""
        return self._cursor.connection.pipeline() if self.postgres else nullcontext()


class Database:
    """The ledger's tables on one backend, sharing the eventsourcing recorder's pool."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.postgres = isinstance(recorder, PostgresApplicationRecorder)
        if not self.postgres and not isinstance(recorder, SQLiteApplicationRecorder):
            raise ConfigurationError("unsupported eventsourcing recorder")
        self.datastore: PostgresDatastore | SQLiteDatastore = recorder.datastore
        self.events_table = recorder.events_table_name
        if self.postgres:
            self._lock_sql = SQL("; ").join(recorder.lock_table_statements)

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A serialised write transaction (PostgreSQL table lock / SQLite BEGIN IMMEDIATE)."""
        try:
            if self.postgres:
                yield from self._pg_tx(lock=True)
            else:
                yield from self._sqlite_tx(immediate=True)
        except _INTEGRITY as exc:
            raise ConflictError(
                "a concurrent writer stored the same position first", code="CONFLICT"
            ) from exc
        except _UNAVAILABLE as exc:
            raise StorageError(f"database unavailable: {type(exc).__name__}") from exc

    @contextmanager
    def access_write(self) -> Iterator[Tx]:
        """A write transaction of the access log, serialised with the other access-log writers only.

        PostgreSQL: a transaction-scoped advisory lock (no table lock: appends to the case log never
        wait for it, nor it for them; it needs no privilege). SQLite: BEGIN IMMEDIATE, as any write."""
        try:
            if self.postgres:
                yield from self._pg_tx(lock=False, advisory=ACCESS_LOG_LOCK)
            else:
                yield from self._sqlite_tx(immediate=True)
        except _INTEGRITY as exc:
            raise ConflictError("a concurrent writer stored the same access entry first", code="CONFLICT") from exc
        except _UNAVAILABLE as exc:
            raise StorageError(f"database unavailable: {type(exc).__name__}") from exc

    @contextmanager
    def erasing(self) -> Iterator[Tx]:
        """A write transaction whose deletes leave no readable bytes in the database's own files.

        SQLite: ``PRAGMA secure_delete`` overwrites what a delete frees, and a WAL checkpoint
        (TRUNCATE) after the commit moves the pages into the database file and empties the WAL,
        which held the row's earlier versions. PostgreSQL: an ordinary delete; the row's bytes stay in
        the table's files until VACUUM reuses the space (docs/privacy.md)."""
        if self.postgres:
            with self.write() as tx:
                yield tx
            return
        try:
            yield from self._sqlite_tx(immediate=True, secure=True)
        except _UNAVAILABLE as exc:
            raise StorageError(f"database unavailable: {type(exc).__name__}") from exc
        self.compact()

    def compact(self, *, vacuum: bool = False) -> None:
        """SQLite: checkpoint the WAL into the database file and truncate it; with ``vacuum``, first
        rewrite the whole file so that no freed page keeps old bytes (no-op on PostgreSQL)."""
        if self.postgres:
            return
        datastore = self.datastore
        assert isinstance(datastore, SQLiteDatastore)
        try:
            with datastore.get_connection(commit=False) as conn:
                if vacuum:
                    conn._sqlite_conn.execute("VACUUM")
                conn._sqlite_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except _UNAVAILABLE as exc:
            raise StorageError(f"database unavailable: {type(exc).__name__}") from exc

    @contextmanager
    def read(self) -> Iterator[Tx]:
        try:
            if self.postgres:
                yield from self._pg_tx(lock=False)
            else:
                yield from self._sqlite_tx(immediate=False)
        except _UNAVAILABLE as exc:
            raise StorageError(f"database unavailable: {type(exc).__name__}") from exc

    def _pg_tx(self, *, lock: bool, advisory: int | None = None) -> Iterator[Tx]:
        datastore = self.datastore
        assert isinstance(datastore, PostgresDatastore)
        # Tuple rows (the library's pool hands out dict rows, which merge duplicate column names).
        with datastore.get_connection() as conn, conn.transaction(), conn.cursor(row_factory=tuple_row) as curs:
            tx = Tx(curs, postgres=True)
            if datastore.schema != "public":
                tx.execute(f"SET LOCAL search_path TO {_quote_ident(datastore.schema)}")
            if lock:
                # The library's own lock statements (EXCLUSIVE lock on its events table: one writer at
                # a time, commit order = insert order), sent as one simple-protocol round trip.
                curs.execute(self._lock_sql)
            if advisory is not None:
                tx.execute("SELECT pg_advisory_xact_lock(?)", (advisory,))
            yield tx

    def _sqlite_tx(self, *, immediate: bool, secure: bool = False) -> Iterator[Tx]:
        datastore = self.datastore
        assert isinstance(datastore, SQLiteDatastore)
        with datastore.get_connection(commit=immediate) as conn:
            raw = conn._sqlite_conn
            cursor = raw.cursor()
            if immediate:
                # only an erasing transaction overwrites what its deletes free (it costs writes)
                cursor.execute(f"PRAGMA secure_delete={'ON' if secure else 'OFF'}")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA cache_size=-131072")  # 128 MiB: index inserts stay in memory at 1M+ entries
                cursor.execute("PRAGMA wal_autocheckpoint=10000")
            cursor.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield Tx(cursor, postgres=False)
            except BaseException:
                raw.rollback()
                raise
            else:
                if immediate:
                    raw.commit()
                else:
                    raw.rollback()
            finally:
                cursor.close()

    def insert_events(self, tx: Tx, stored: Sequence[Any]) -> None:
        """Insert stored events with the library's own statements, inside ``tx`` (our transaction, so
        that the events, the log rows and the read models commit together).

        The library's public ``insert_events`` opens a transaction of its own, which cannot hold our
        rows too; so this is the one place that calls its per-backend insert routine on our cursor.
        ``tests/ledger/storage/test_storage_contract.py`` pins what we rely on, on both backends."""
        if self.postgres:
            PostgresAggregateRecorder._insert_stored_events(self.recorder, tx.raw, stored)
        else:
            self.recorder._insert_events(tx.raw, stored)

    def select_events(self, originator_id: Any, *, gt: int | None = None, limit: int | None = None) -> list[Any]:
        """The library's stored events of one originator (its ``select_events``), StorageError when the
        database cannot be reached."""
        try:
            return list(self.recorder.select_events(originator_id, gt=gt, limit=limit))
        except _UNAVAILABLE as exc:
            raise StorageError(f"database unavailable: {type(exc).__name__}") from exc

    def case_key_sql(self, column: str) -> str:
        """SQL that turns a canonical case id column into the events table's originator_id form."""
        return f"CAST({column} AS uuid)" if self.postgres else f"replace({column}, '-', '')"

    # -- schema -------------------------------------------------------------------------------

    def ddl(self) -> list[str]:
        return [self._dialect(stmt) for stmt in schema.TABLES]

    @staticmethod
    def sqlite_ddl() -> list[str]:
        """The table definitions in the SQLite dialect (for scratch stores)."""
        return [schema.dialect(stmt, postgres=False) for stmt in schema.TABLES]

    def migrate(self) -> list[schema.Migration]:
        """Create the ledger's tables, or bring an older schema up to ``schema.SCHEMA_VERSION``, in one
        transaction. Run by `init`, `db migrate` and `db provision` only (never at run time).

        Returns the migrations applied; the caller runs their data steps (``Ledger.migrate``)."""
        self.recorder.create_table()
        with self.write() as tx:
            tx.execute(self._dialect(schema.TABLES[0]))  # ledger_meta, to learn the version
            row = tx.one("SELECT value FROM ledger_meta WHERE key = 'schema_version'")
            found = None if row is None else int(row[0])
            if found is not None and found > schema.SCHEMA_VERSION:
                raise ConfigurationError(
                    f"the database has schema version {found}; this release knows {schema.SCHEMA_VERSION}: "
                    "upgrade evidence-ledger"
                )
            steps = schema.pending(found)
            for migration in steps:
                for statement in migration.statements:
                    tx.execute(self._dialect(statement))
            for statement in self.ddl():  # new tables; existing ones are left as migrated
                tx.execute(statement)
            tx.execute(
                "INSERT INTO ledger_meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(schema.SCHEMA_VERSION),),
            )
        return steps

    def _dialect(self, statement: str) -> str:
        return schema.dialect(statement, postgres=self.postgres)

    def columns(self, tx: Tx, table: str) -> list[str]:
        """The column names of one of the ledger's tables (empty when it does not exist)."""
        if self.postgres:
            rows = tx.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
                " AND table_name = ? ORDER BY ordinal_position",
                (table,),
            )
        else:
            rows = [(r[1],) for r in tx.query(f"PRAGMA table_info({table})")]
        return [str(r[0]) for r in rows]

    def check_schema(self) -> None:
        try:
            with self.read() as tx:
                row = tx.one("SELECT value FROM ledger_meta WHERE key = 'schema_version'")
        except (
            psycopg.errors.UndefinedTable,
            sqlite3.OperationalError,
            es.ProgrammingError,
            StorageError,
        ) as exc:
            raise ConfigurationError("ledger tables are missing: run `evidence-ledger db migrate`") from exc
        if row is None or int(row[0]) != schema.SCHEMA_VERSION:
            raise ConfigurationError("ledger schema version mismatch: run `evidence-ledger db migrate`")

    def durability_problems(self) -> list[str]:
        """Settings that would let an acknowledged event be lost; empty when safe."""
        problems: list[str] = []
        with self.read() as tx:
            if self.postgres:
                expected = {
                    "fsync": {"on"},
                    "synchronous_commit": {"on", "remote_apply"},
                    "full_page_writes": {"on"},
                }
                for name, allowed in expected.items():
                    row = tx.one(f"SHOW {name}")
                    value = str(row[0]) if row else "?"
                    if value not in allowed:
                        problems.append(
                            f"PostgreSQL {name} is '{value}'; set {name} = {sorted(allowed)[0]} in postgresql.conf"
                        )
            else:
                mode = tx.one("PRAGMA journal_mode")
                if not mode or str(mode[0]).lower() != "wal":
                    problems.append("SQLite journal_mode is not WAL; the ledger needs journal_mode=WAL")
        if not self.postgres:
            with self.write() as tx:
                sync = tx.one("PRAGMA synchronous")
                if not sync or int(sync[0]) < 2:
                    problems.append("SQLite synchronous is below FULL; the ledger needs synchronous=FULL")
        return problems


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
