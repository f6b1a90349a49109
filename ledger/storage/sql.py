"""Transactions and schema for the ledger's own tables, on the eventsourcing datastores.

The ledger reuses the library's connection pools (and its SQLite WAL setup) and runs its own SQL
in the same transactions as the library's event inserts. SQL is written with ``?`` placeholders;
the PostgreSQL dialect rewrites them to ``%s``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import psycopg
from eventsourcing import persistence as es
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL

from domain.errors import ConflictError, LedgerError
from ledger.settings import ConfigurationError


class StorageError(LedgerError):
    """The database failed or is unreachable (maps to 503)."""

    code = "STORAGE_UNAVAILABLE"


Row = tuple[Any, ...]

# The eventsourcing PostgreSQL datastore re-raises driver errors as its own persistence errors.
_INTEGRITY = (psycopg.errors.UniqueViolation, sqlite3.IntegrityError, es.IntegrityError)
_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
    es.OperationalError,
    es.InterfaceError,
)


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
        if rows:
            self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(self._sql(sql), tuple(params))
        return [tuple(row) for row in self._cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @property
    def raw(self) -> Any:
        return self._cursor

    def pipeline(self) -> AbstractContextManager[Any]:
        """PostgreSQL pipeline mode (statements sent without waiting; errors surface at the end)."""
        return self._cursor.connection.pipeline() if self.postgres else nullcontext()


SCHEMA_VERSION = 2

# The append-only tables: the service only ever INSERTs into them (PostgreSQL triggers enforce it
# for every role, see `db provision`). Everything else is a read model (rebuilt by `replay`) or
# operational state, each row of which carries a MAC (``ledger/integrity.py``).
APPEND_ONLY_TABLES = (
    "log_entries", "log_nodes", "log_checkpoints", "log_cosignatures", "api_tokens", "api_token_revocations",
)
READ_MODEL_TABLES = ("case_state", "case_timeline", "public_releases", "projection_tracking", "log_head")

# One DDL list for both dialects; {blob} and {bigint} are substituted per backend.
_DDL = [
    """CREATE TABLE IF NOT EXISTS ledger_meta (
        key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS log_entries (
        leaf_index {bigint} PRIMARY KEY CHECK (leaf_index >= 0),
        event_id TEXT NOT NULL UNIQUE,
        case_id TEXT NOT NULL,
        seq {bigint} NOT NULL CHECK (seq >= 1),
        event_type TEXT NOT NULL,
        envelope_sha256 TEXT NOT NULL,
        leaf {blob} NOT NULL,
        integrated_at TEXT NOT NULL,
        UNIQUE (case_id, seq))""",
    """CREATE TABLE IF NOT EXISTS log_nodes (
        level INTEGER NOT NULL, idx {bigint} NOT NULL, hash {blob} NOT NULL,
        PRIMARY KEY (level, idx))""",
    """CREATE TABLE IF NOT EXISTS log_checkpoints (
        size {bigint} PRIMARY KEY, root {blob} NOT NULL, note TEXT NOT NULL, signed_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS log_cosignatures (
        size {bigint} NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, received_at TEXT NOT NULL,
        PRIMARY KEY (size, witness))""",
    """CREATE TABLE IF NOT EXISTS case_state (
        case_id TEXT PRIMARY KEY, version {bigint} NOT NULL, head_sha256 TEXT NOT NULL,
        status TEXT NOT NULL, category TEXT NOT NULL, updated_leaf {bigint} NOT NULL,
        state TEXT NOT NULL, view TEXT NOT NULL, public_count {bigint} NOT NULL DEFAULT 0,
        mac TEXT NOT NULL DEFAULT '')""",
    """CREATE INDEX IF NOT EXISTS case_state_status ON case_state (status, category, case_id)""",
    """CREATE TABLE IF NOT EXISTS case_timeline (
        case_id TEXT NOT NULL, seq {bigint} NOT NULL, leaf_index {bigint} NOT NULL, entry TEXT NOT NULL,
        mac TEXT NOT NULL DEFAULT '', PRIMARY KEY (case_id, seq))""",
    """CREATE TABLE IF NOT EXISTS public_releases (
        case_id TEXT NOT NULL, footage_id TEXT NOT NULL, status TEXT NOT NULL, entry TEXT NOT NULL,
        version {bigint} NOT NULL DEFAULT 0, mac TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (case_id, footage_id))""",
    """CREATE TABLE IF NOT EXISTS projection_tracking (
        name TEXT PRIMARY KEY, position {bigint} NOT NULL, mac TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS log_head (
        id INTEGER PRIMARY KEY CHECK (id = 1), size {bigint} NOT NULL, root {blob} NOT NULL,
        integrated_at TEXT NOT NULL, cases {bigint} NOT NULL, public_releases {bigint} NOT NULL,
        mac TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sealed_records (
        sealed_ref TEXT PRIMARY KEY, kek_id TEXT NOT NULL, wrapped_key {blob} NOT NULL,
        nonce {blob} NOT NULL, ciphertext {blob} NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS api_tokens (
        token_id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, actor TEXT NOT NULL,
        role TEXT NOT NULL, authority TEXT, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        mac TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS api_token_revocations (
        token_id TEXT PRIMARY KEY, revoked_at TEXT NOT NULL, mac TEXT NOT NULL)""",
]

# Schema 1 -> 2: MAC columns on the read models (then rebuilt by `replay`), the log head, tokens
# with a MAC and revocations in their own append-only table.
_UPGRADE_1_TO_2 = [
    "ALTER TABLE case_state ADD COLUMN public_count {bigint} NOT NULL DEFAULT 0",
    "ALTER TABLE case_state ADD COLUMN mac TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE case_timeline ADD COLUMN mac TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE public_releases ADD COLUMN version {bigint} NOT NULL DEFAULT 0",
    "ALTER TABLE public_releases ADD COLUMN mac TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE projection_tracking ADD COLUMN mac TEXT NOT NULL DEFAULT ''",
]


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
    def read(self) -> Iterator[Tx]:
        try:
            if self.postgres:
                yield from self._pg_tx(lock=False)
            else:
                yield from self._sqlite_tx(immediate=False)
        except _UNAVAILABLE as exc:
            raise StorageError(f"database unavailable: {type(exc).__name__}") from exc

    def _pg_tx(self, *, lock: bool) -> Iterator[Tx]:
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
            yield tx

    def _sqlite_tx(self, *, immediate: bool) -> Iterator[Tx]:
        datastore = self.datastore
        assert isinstance(datastore, SQLiteDatastore)
        with datastore.get_connection(commit=immediate) as conn:
            raw = conn._sqlite_conn
            cursor = raw.cursor()
            if immediate:
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

    def case_key_sql(self, column: str) -> str:
        """SQL that turns a canonical case id column into the events table's originator_id form."""
        return f"CAST({column} AS uuid)" if self.postgres else f"replace({column}, '-', '')"

    # -- schema -------------------------------------------------------------------------------

    def ddl(self) -> list[str]:
        return [self._dialect(stmt) for stmt in _DDL]

    @staticmethod
    def sqlite_ddl() -> list[str]:
        """The table definitions in the SQLite dialect (for scratch stores)."""
        return [stmt.format(blob="BLOB", bigint="INTEGER") for stmt in _DDL]

    def migrate(self) -> int | None:
        """Create the ledger's tables and bring an older schema up to :data:`SCHEMA_VERSION`, in one
        transaction. Run by `init`, `db migrate` and `db provision` only (never at run time).

        Returns the schema version found (None for a new database); the caller rebuilds what an
        upgrade leaves empty (``ledger.store.Ledger.migrate``)."""
        self.recorder.create_table()
        with self.write() as tx:
            for statement in self.ddl():
                tx.execute(statement)
            row = tx.one("SELECT value FROM ledger_meta WHERE key = 'schema_version'")
            found = None if row is None else int(row[0])
            if found is not None and found > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"the database has schema version {found}; this release knows {SCHEMA_VERSION}: "
                    "upgrade evidence-ledger"
                )
            if found == 1:
                for statement in _UPGRADE_1_TO_2:
                    tx.execute(self._dialect(statement))
            tx.execute(
                "INSERT INTO ledger_meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
        return found

    def _dialect(self, statement: str) -> str:
        blob, bigint = ("BYTEA", "BIGINT") if self.postgres else ("BLOB", "INTEGER")
        return statement.format(blob=blob, bigint=bigint)

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
        if row is None or int(row[0]) != SCHEMA_VERSION:
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
