"""The read replica's remembered log size (ledger/storage/replica.py), without a cluster: it is forgotten
when the replica is marked down, and a new connection that finds a smaller log (a server restarted from an
older copy) brings it down and sends the read that needs more to the primary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.bootstrap import init_data_dir
from ledger.log import tlog
from ledger.settings import Settings
from ledger.storage.replica import ReadReplica, ReplicaBehind, ReplicaDatabase
from ledger.storage.sql import StorageError
from ledger.store import Ledger
from tests.support.ledgers import ORIGIN, FakeClock

NOWHERE = "postgresql://postgres@127.0.0.1:9/nothing"  # never connected to by these tests


class Connection:
    """Stands for one database connection (a server process's session)."""


class FakeTx:
    def __init__(self, connection: Connection, size: int) -> None:
        self._cursor = type("Cursor", (), {"connection": connection})()
        self.size = size


def replica(tmp_path: Path, **overrides: Any) -> ReadReplica:
    settings = Settings(data_dir=tmp_path, database_url=NOWHERE, read_database_url=NOWHERE, **overrides)
    return ReadReplica(settings, log_size=lambda tx: tx.size)


def test_a_new_connection_to_an_older_copy_lowers_the_remembered_size(tmp_path: Path) -> None:
    rr = replica(tmp_path)
    first = Connection()
    rr.check_connection(FakeTx(first, 10), needed=5)  # type: ignore[arg-type]
    assert rr.applied == 10
    route = rr.route(8)
    assert (route.source, route.size) == ("replica", 10)  # remembered: no query
    # the replica was replaced by an older copy: only reachable through a new connection
    older = Connection()
    with pytest.raises(ReplicaBehind) as behind:
        rr.check_connection(FakeTx(older, 4), needed=8)  # type: ignore[arg-type]
    assert behind.value.refs == {"needed": 8, "replica_size": 4} and rr.applied == 4
    # a connection once checked is not asked again (one query per connection, not per read)
    rr.check_connection(FakeTx(older, 999), needed=8)  # type: ignore[arg-type]
    assert rr.applied == 4


def test_marking_the_replica_down_forgets_its_size(tmp_path: Path) -> None:
    rr = replica(tmp_path)
    rr.check_connection(FakeTx(Connection(), 10), needed=0)  # type: ignore[arg-type]
    assert rr.applied == 10
    rr.mark_down(StorageError("read replica unavailable: OperationalError"))
    assert rr.applied == 0 and not rr.reachable
    assert rr.route(1).source == "primary"  # left alone for read_recheck_seconds


def _sqlite_ledger(tmp_path: Path) -> Ledger:
    data_dir = tmp_path / "data"
    clock = FakeClock()
    init_data_dir(data_dir, ORIGIN, Settings(data_dir=data_dir), now=clock())
    return Ledger(Settings(data_dir=data_dir), clock=clock)


@pytest.mark.parametrize("fallback", ["primary", "unavailable"])
def test_a_read_a_new_connection_finds_behind_is_finished_on_the_primary_or_refused(
    tmp_path: Path, fallback: str
) -> None:
    ledger = _sqlite_ledger(tmp_path)
    try:
        rr = ReadReplica(
            Settings(data_dir=tmp_path, database_url=NOWHERE, read_database_url=NOWHERE, read_fallback=fallback),
            log_size=lambda tx: tlog.log_size(tx)[0],
        )
        with ledger.db.read() as tx:
            size = tlog.log_size(tx)[0]
        # the same tables stand for the replica; the read needs one entry more than it has
        database = ReplicaDatabase(ledger.db.recorder)
        database.primary, database.owner, database.needed = ledger.db, rr, size + 1
        if fallback == "unavailable":
            with pytest.raises(ReplicaBehind), database.read():
                pass
            assert not database.fell_back
        else:
            with database.read() as tx:
                assert tlog.log_size(tx)[0] == size
            assert database.fell_back
        assert rr.applied == size and rr.reachable  # behind is not down
        database.needed, database.fell_back = size, False
        with database.read():
            pass
        assert not database.fell_back  # current enough: served where it was routed
    finally:
        ledger.close()

