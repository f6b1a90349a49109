"""``Tx.executemany``: on PostgreSQL an INSERT's rows go as one statement (in chunks under the
protocol's parameter limit); on both backends the rows written are the rows given."""

from __future__ import annotations

import sqlite3

import pytest

from ledger.storage import sql
from ledger.store import Ledger


@pytest.fixture
def table(ledger: Ledger) -> Ledger:
    with ledger.db.write() as tx:
        tx.execute("CREATE TABLE em_probe (k INTEGER PRIMARY KEY, v TEXT, b BYTEA)"
                   if tx.postgres else "CREATE TABLE em_probe (k INTEGER PRIMARY KEY, v TEXT, b BLOB)")
    return ledger


def _rows(ledger: Ledger) -> list[tuple[object, ...]]:
    with ledger.db.read() as tx:
        return [(int(k), v, None if b is None else bytes(b)) for k, v, b in tx.query("SELECT k, v, b FROM em_probe ORDER BY k")]


def test_every_row_is_written_across_chunks(table: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "_MAX_PARAMS", 7)  # 2 rows of 3 per statement
    rows = [(i, None if i % 3 == 0 else f"v?{i}", bytes([i])) for i in range(11)]
    with table.db.write() as tx:
        tx.executemany("INSERT INTO em_probe (k, v, b) VALUES (?, ?, ?)", rows)
    assert _rows(table) == rows


def test_on_conflict_clauses_after_the_values_still_apply(table: Ledger) -> None:
    with table.db.write() as tx:
        tx.executemany("INSERT INTO em_probe (k, v, b) VALUES (?, ?, ?)", [(1, "a", None), (2, "b", None)])
        tx.executemany(
            "INSERT INTO em_probe (k, v, b) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            [(2, "B", None), (3, "C", None)],
        )
    assert _rows(table) == [(1, "a", None), (2, "B", None), (3, "C", None)]


def test_a_duplicate_key_fails_the_whole_statement(table: Ledger) -> None:
    from domain.errors import ConflictError

    with pytest.raises(ConflictError), table.db.write() as tx:
        tx.executemany("INSERT INTO em_probe (k, v, b) VALUES (?, ?, ?)", [(1, "a", None), (1, "b", None)])
    assert _rows(table) == []


def test_a_row_of_the_wrong_width_is_refused(table: Ledger) -> None:
    with pytest.raises((ValueError, sqlite3.ProgrammingError)), table.db.write() as tx:
        tx.executemany("INSERT INTO em_probe (k, v, b) VALUES (?, ?, ?)", [(1, "a", None), (2, "b")])
    assert _rows(table) == []
