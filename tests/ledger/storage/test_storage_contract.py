"""What `ledger/storage/sql.py` relies on in the eventsourcing library beyond its public API, pinned
per backend, so that an upgrade of the library that changes it fails here and not in production.

The ledger writes events, log rows and read models in one transaction of its own; the library's
public ``insert_events`` cannot join it. So ``Database`` uses the library's pools and its own insert
routine on our cursor (``Database.insert_events``), the raw connection of a pooled SQLite
connection, and the library's lock statements on PostgreSQL.
"""

from __future__ import annotations

import inspect
import sqlite3
import threading
import uuid
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnection

from domain.errors import ConflictError
from ledger.storage.sql import Database
from ledger.store import Ledger


def _event(case: uuid.UUID, version: int, state: bytes) -> StoredEvent:
    return StoredEvent(originator_id=case, originator_version=version, topic="Contract/v1", state=state)


def test_the_private_routines_used_exist_with_the_signatures_relied_on() -> None:
    sqlite_insert = inspect.signature(SQLiteApplicationRecorder._insert_events)
    assert list(sqlite_insert.parameters)[:3] == ["self", "c", "stored_events"]
    pg_insert = inspect.signature(PostgresAggregateRecorder._insert_stored_events)
    assert list(pg_insert.parameters)[:3] == ["self", "curs", "stored_events"]
    assert "_sqlite_conn" in SQLiteConnection.__init__.__code__.co_names


def test_events_inserted_in_our_transaction_read_back_verbatim_through_the_public_api(ledger: Ledger) -> None:
    db: Database = ledger.db
    case = uuid.uuid4()
    states = [b'{"exact":"bytes, never re-encoded"}', "é, ✓ and \\u00e9".encode()]
    with db.write() as tx:
        db.insert_events(tx, [_event(case, n, s) for n, s in enumerate(states, 1)])
    stored = ledger.app.recorder.select_events(case)
    assert [(e.originator_version, bytes(e.state)) for e in stored] == list(enumerate(states, 1))


def test_a_failed_transaction_leaves_neither_events_nor_our_rows(ledger: Ledger) -> None:
    db: Database = ledger.db
    case = uuid.uuid4()
    with pytest.raises(RuntimeError), db.write() as tx:
        db.insert_events(tx, [_event(case, 1, b"{}")])
        tx.execute("INSERT INTO ledger_meta (key, value) VALUES ('contract', 'x')")
        raise RuntimeError("the batch failed after its inserts")
    assert ledger.app.recorder.select_events(case) == []
    with db.read() as tx:
        assert tx.one("SELECT value FROM ledger_meta WHERE key = 'contract'") is None


def test_a_second_event_at_the_same_position_is_a_conflict(ledger: Ledger) -> None:
    db: Database = ledger.db
    case = uuid.uuid4()
    with db.write() as tx:
        db.insert_events(tx, [_event(case, 1, b"{}")])
    with pytest.raises(ConflictError), db.write() as tx:
        db.insert_events(tx, [_event(case, 1, b'{"other":1}')])


def test_a_write_transaction_excludes_every_other_writer(ledger: Ledger) -> None:
    """PostgreSQL: the library's EXCLUSIVE lock on its events table; SQLite: BEGIN IMMEDIATE, in WAL
    mode with synchronous=FULL. A second writer cannot start while the first holds the transaction."""
    db: Database = ledger.db
    target = ledger.target
    blocked: list[Any] = []
    with db.write() as tx:
        if db.postgres:
            assert tx.one("SHOW synchronous_commit") in (("on",), ("remote_apply",))
            with psycopg.connect(
                host=target.host, port=target.port, dbname=target.dbname, user=target.user, autocommit=True
            ) as other:
                locks = other.execute(
                    "SELECT mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = %s"
                    " AND l.granted",
                    (db.events_table,),
                ).fetchall()
                assert ("ExclusiveLock",) in locks
        else:
            assert tx.one("PRAGMA journal_mode") == ("wal",) and tx.one("PRAGMA synchronous") == (2,)

            def second_writer() -> None:
                other = sqlite3.connect(str(target.sqlite_path), timeout=0)
                try:
                    other.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    blocked.append(str(exc))
                finally:
                    other.close()

            thread = threading.Thread(target=second_writer)
            thread.start()
            thread.join(10)
            assert blocked and "locked" in blocked[0]
