"""Reads from a PostgreSQL streaming replica (docs/scaling-reads.md), on a real primary and hot standby.

The cluster (ops/pgcluster.py) is made once for the module; each test makes its own database
on the primary (a replica follows every database) and its own ledger in it. Lag is made with
``pg_wal_replay_pause()``: the replica then holds the state of that moment however much the primary
writes. A checkpoint signed by *another* process on the same primary (a second Ledger) stands for one the
client got elsewhere: this server never saw it, so only the client's header can keep it from going behind.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from api.reads import HELD_HEADER, SIZE_HEADER, SOURCE_HEADER
from domain.errors import LedgerError
from ledger.bootstrap import init_data_dir
from ledger.cli.app import commands
from ledger.cli.remembered import check_log
from ledger.client import HELD_CHECKPOINT_HEADER, RemoteLedger, held_size
from ledger.log import tlog
from ledger.settings import ConfigurationError, Settings
from ledger.storage.replica import ReadReplica
from ledger.store import Ledger
from ops.pgcluster import PrimaryAndReplica, free_port, primary_and_replica
from tests.support import pg_cluster
from tests.support.api import Api, problem, running_api
from tests.support.cases import case_opened, footage_captured, new_case_id
from tests.support.ledgers import ORIGIN, FakeClock

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("pg-cluster")]  # one cluster, on one worker

SETUP_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrimaryAndReplica]:
    pg_cluster.skip_or_fail("read-replica tests")
    started = time.monotonic()
    with primary_and_replica() as made:
        SETUP_SECONDS["cluster"] = time.monotonic() - started
        print(f"\nprimary + replica set up in {SETUP_SECONDS['cluster']:.2f} s")
        yield made


@dataclass
class Replicated:
    cluster: PrimaryAndReplica
    data_dir: Path
    clock: FakeClock
    primary_url: str
    replica_url: str

    def settings(self, **overrides: object) -> Settings:
        fields: dict[str, object] = {
            "data_dir": self.data_dir,
            "database_url": self.primary_url,
            "read_database_url": self.replica_url,
            "checkpoint_interval": 3600.0,  # checkpoints only where the test signs them
            "receipt_max_delay": 7200,
            **overrides,
        }
        return Settings(**fields)  # type: ignore[arg-type]

    def sign_elsewhere(self) -> int:
        """A checkpoint signed by another process on the primary (this server never sees it); its size."""
        other = Ledger(self.settings(read_database_url=None), clock=self.clock)
        try:
            checkpoint = other.checkpoint()
        finally:
            other.close()
        assert checkpoint is not None
        return checkpoint.size


@pytest.fixture
def replicated(cluster: PrimaryAndReplica, tmp_path: Path) -> Iterator[Replicated]:
    name = f"el_replica_{secrets.token_hex(5)}"
    cluster.primary.execute(f'CREATE DATABASE "{name}"')
    try:
        data_dir = tmp_path / "data"
        clock = FakeClock()
        primary_url = cluster.primary.url(name)
        init_data_dir(data_dir, ORIGIN, Settings(data_dir=data_dir, database_url=primary_url), now=clock())
        cluster.wait_caught_up()
        yield Replicated(cluster, data_dir, clock, primary_url, cluster.replica.url(name))
    finally:
        cluster.resume_replay()  # a failed test must not leave the next one paused
        cluster.primary.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def served(replicated: Replicated, request: pytest.FixtureRequest) -> Iterator[Api]:
    overrides = getattr(request, "param", {})
    ledger = Ledger(replicated.settings(**overrides), clock=replicated.clock)
    try:
        with running_api(ledger) as api:
            yield api
    finally:
        ledger.close()


def timeline(api: Api, case_id: str, held: int | None = None) -> tuple[str, int, list[int]]:
    headers = api.auth("auditor")
    if held is not None:
        headers[HELD_HEADER] = str(held)
    response = api.client.get(f"/v1/cases/{case_id}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    return response.headers[SOURCE_HEADER], int(response.headers[SIZE_HEADER]), [
        line["seq"] for line in response.json()["items"]
    ]


def reads(api: Api, database: str, reason: str) -> int:
    return api.runtime.metrics.read_count(database, reason)


def test_a_lagging_replica_never_serves_a_state_older_than_a_held_checkpoint(
    replicated: Replicated, served: Api
) -> None:
    api, cluster = served, replicated.cluster
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    first = api.ledger.checkpoint()
    assert first is not None
    cluster.wait_caught_up()
    assert timeline(api, case_id, held=first.size) == ("replica", first.size, [1])

    cluster.pause_replay()
    api.ok("investigator", case_id, "FootageCaptured", footage_captured("ftg-9"))  # writes go to the primary
    second = replicated.sign_elsewhere()
    assert second > first.size

    # the replica really is behind: a reader that holds nothing newer may be served its state
    assert timeline(api, case_id) == ("replica", first.size, [1])
    # a reader holding the newer checkpoint is served from the primary, never from the replica
    behind = reads(api, "primary", "behind")
    source, size, seqs = timeline(api, case_id, held=second)
    assert (source, seqs) == ("primary", [1, 2]) and size >= second
    assert reads(api, "primary", "behind") == behind + 1

    # every routed case read: the state of the held checkpoint (version 2), from the primary
    held = {**api.auth("auditor"), HELD_HEADER: str(second)}
    for path, check in (
        (f"/v1/cases/{case_id}", lambda body: body["version"] == 2),
        (f"/v1/cases/{case_id}/events", lambda body: len(body["items"]) == 2),
        ("/v1/cases", lambda body: case_id in [c["case_id"] for c in body["items"]]),
        (f"/v1/cases/{case_id}/footage/ftg-9/custody", lambda body: len(body["items"]) == 1),
        (f"/v1/cases/{case_id}?at_index={second - 1}", lambda body: body["version"] == 2),
    ):
        answer = api.client.get(path, headers=held)
        assert answer.status_code == 200 and answer.headers[SOURCE_HEADER] == "primary", (path, answer.text)
        assert check(answer.json()), path
    # without the header the same case view comes from the lagging replica: version 1
    stale = api.client.get(f"/v1/cases/{case_id}", headers=api.auth("auditor"))
    assert stale.headers[SOURCE_HEADER] == "replica" and stale.json()["version"] == 1

    # proofs, checkpoints and leaves of a size the replica lacks: served, never 404 because of lag
    for path in (
        f"/v1/log/proof/consistency?first={first.size}&second={second}",
        f"/v1/log/proof/inclusion?index={second - 1}&size={second}",
        f"/v1/log/checkpoints/{second}",
        f"/v1/log/entries/{second - 1}",
    ):
        answer = api.client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers[SOURCE_HEADER] == "primary", path
    for path in ("/v1/public/releases", "/public", "/v1/public/releases.csv", "/v1/public/releases.atom"):
        answer = api.client.get(path, headers={HELD_HEADER: str(second)})
        assert answer.status_code == 200 and answer.headers[SOURCE_HEADER] == "primary", path
        assert int(answer.headers[SIZE_HEADER]) >= second

    # the server never goes behind a checkpoint it served itself: after GET /v1/log/checkpoint (size
    # `second`), even a reader that says nothing is served from the primary
    assert api.client.get("/v1/log/checkpoint").status_code == 200
    assert timeline(api, case_id)[::2] == ("primary", [1, 2])

    # our client states the checkpoint it remembers on every request after its check of the log
    with RemoteLedger(client=api.client, token=api.token("auditor")) as remote:
        remote.check(check_log)
        assert remote.transport.headers[HELD_CHECKPOINT_HEADER] == str(second)
        answer = remote.transport.call("GET", f"/v1/cases/{case_id}/timeline")
        assert answer.headers[SOURCE_HEADER] == "primary" and len(answer.json()["items"]) == 2

    ready = api.client.get("/readyz").json()
    assert ready["replica"]["reachable"] and ready["replica"]["lag"] >= 1 and ready["replica"]["floor"] == second
    metrics = api.client.get("/metrics").text
    assert 'evidence_ledger_reads_total{database="primary",reason="behind"}' in metrics
    assert "evidence_ledger_replica_lag " in metrics

    cluster.resume_replay()
    cluster.wait_caught_up()
    current = reads(api, "replica", "current")
    source, size, seqs = timeline(api, case_id, held=second)
    assert (source, seqs) == ("replica", [1, 2]) and size >= second
    assert reads(api, "replica", "current") == current + 1
    assert api.client.get(f"/v1/log/proof/consistency?first={first.size}&second={second}").headers[
        SOURCE_HEADER
    ] == "replica"
    assert api.client.get("/readyz").json()["replica"]["lag"] == 0


@pytest.mark.parametrize("served", [{"read_fallback": "unavailable"}], indirect=True)
def test_with_fallback_unavailable_a_lagging_read_is_503_with_retry_after(
    replicated: Replicated, served: Api
) -> None:
    api, cluster = served, replicated.cluster
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    cluster.wait_caught_up()
    cluster.pause_replay()
    api.ok("investigator", case_id, "FootageCaptured", footage_captured("ftg-9"))
    second = replicated.sign_elsewhere()

    headers = {**api.auth("auditor"), HELD_HEADER: str(second)}
    refused = api.client.get(f"/v1/cases/{case_id}/timeline", headers=headers)
    body = problem(refused, 503, "REPLICA_BEHIND")
    assert int(refused.headers["Retry-After"]) >= 1 and body["refs"]["needed"] == second
    assert api.runtime.metrics.read_count("none", "refused") == 1
    assert api.client.get(f"/v1/log/proof/consistency?first=1&second={second}").status_code == 503

    cluster.resume_replay()
    cluster.wait_caught_up()
    assert timeline(api, case_id, held=second)[::2] == ("replica", [1, 2])


def test_an_unreachable_replica_falls_back_or_is_503_never_500(replicated: Replicated) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    ledger = Ledger(replicated.settings(read_database_url=dead), clock=replicated.clock)
    try:
        with running_api(ledger) as api:
            case_id = new_case_id()
            api.ok("investigator", case_id, "CaseOpened", case_opened())
            assert timeline(api, case_id)[::2] == ("primary", [1])
            assert api.runtime.metrics.read_count("primary", "unreachable") == 1
            assert api.client.get("/readyz").json()["replica"]["reachable"] is False
    finally:
        ledger.close()
    ledger = Ledger(replicated.settings(read_database_url=dead, read_fallback="unavailable"), clock=replicated.clock)
    try:
        with running_api(ledger) as api:
            answer = api.client.get("/v1/public/releases")
            problem(answer, 503, "REPLICA_BEHIND")
            assert answer.headers["Retry-After"]
    finally:
        ledger.close()


def test_a_replica_that_goes_away_after_routing_is_replaced_by_the_primary(
    replicated: Replicated, served: Api
) -> None:
    api, cluster = served, replicated.cluster
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    signed = api.ledger.checkpoint()
    assert signed is not None
    cluster.wait_caught_up()
    assert timeline(api, case_id, held=signed.size)[::2] == ("replica", [1])  # current: no query per read now
    cluster.stop_replica()
    try:
        # routed to the replica (it was current), which fails: the primary finishes the read
        assert timeline(api, case_id)[::2] == ("primary", [1])
        assert reads(api, "primary", "failed") == 1
        # and the replica is left alone: the next reads go to the primary at once
        started = time.monotonic()
        assert timeline(api, case_id)[::2] == ("primary", [1])
        assert reads(api, "primary", "unreachable") == 1 and time.monotonic() - started < 1.5
        assert api.client.get("/readyz").json()["replica"]["reachable"] is False
    finally:
        cluster.start_replica()
    cluster.wait_caught_up()


def test_a_checkpoint_whose_entries_the_replica_has_but_not_its_row_is_read_on_the_primary(
    replicated: Replicated, served: Api
) -> None:
    """Entries are committed before their checkpoint row: routing (by log size) may pick a replica that
    lacks the row the primary has; that is never a 404."""
    api, cluster = served, replicated.cluster
    api.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    cluster.wait_caught_up()
    cluster.pause_replay()
    size = replicated.sign_elsewhere()  # the row on the primary only; the replica has all `size` entries
    answer = api.client.get(f"/v1/log/checkpoints/{size}")
    assert answer.status_code == 200, answer.text
    assert answer.headers[SOURCE_HEADER] == "primary" and answer.text.split("\n")[1] == str(size)
    assert api.ledger.replica is not None and api.ledger.replica.applied == size  # routed to the replica first
    problem(api.client.get(f"/v1/log/checkpoints/{size + 5}"), 404, "NO_CHECKPOINT")  # nowhere: still 404


def test_the_client_reads_its_own_appends_from_a_lagging_replica(replicated: Replicated, served: Api) -> None:
    """After an append the client asks every read to reflect its entry (leaf_index + 1): the case head it
    reads next is not the replica's older one, so its next append is not a 409."""
    api, cluster = served, replicated.cluster
    case_id, key = new_case_id(), api.actors.keys["investigator"]
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    assert api.ledger.checkpoint() is not None
    cluster.wait_caught_up()
    cluster.pause_replay()
    with RemoteLedger(token=api.token("investigator"), client=api.client, clock=api.ledger.clock) as remote:
        first = remote.append(case_id, "FootageCaptured", footage_captured("ftg-1"), key)
        assert remote.transport.headers[HELD_CHECKPOINT_HEADER] == str(first["leaf_index"] + 1)
        view = remote.transport.call("GET", f"/v1/cases/{case_id}")
        assert view.headers[SOURCE_HEADER] == "primary" and view.json()["version"] == 2
        second = remote.append(case_id, "FootageCaptured", footage_captured("ftg-2"), key)
        assert second["leaf_index"] == first["leaf_index"] + 1
        assert remote.transport.headers[HELD_CHECKPOINT_HEADER] == str(second["leaf_index"] + 1)
        remote.read_at_least(1)  # never goes down
        assert remote.transport.headers[HELD_CHECKPOINT_HEADER] == str(second["leaf_index"] + 1)
    # a reader that states nothing is still served the replica's older state
    stale = api.client.get(f"/v1/cases/{case_id}", headers=api.auth("auditor"))
    assert stale.headers[SOURCE_HEADER] == "replica" and stale.json()["version"] == 1


def test_writes_never_go_to_the_replica(replicated: Replicated, served: Api) -> None:
    api, cluster = served, replicated.cluster
    replica = api.ledger.replica
    assert replica is not None
    for open_write in (replica.db.write, replica.db.access_write, replica.db.erasing):
        with pytest.raises(ConfigurationError, match="writes go to the primary"):
            open_write()
    # with replay paused nothing written is visible on the replica: every write must land on the primary
    cluster.wait_caught_up()
    cluster.pause_replay()
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.issue("auditor")
    checkpoint = api.ledger.checkpoint()
    assert checkpoint is not None
    assert api.client.get(f"/v1/cases/{case_id}", headers=api.auth("auditor")).status_code == 200
    with psycopg.connect(replicated.replica_url) as conn:
        on_replica = conn.execute("SELECT COUNT(*) FROM log_entries WHERE case_id = %s", (case_id,)).fetchone()
        assert on_replica == (0,)
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    cluster.resume_replay()
    cluster.wait_caught_up()
    with psycopg.connect(replicated.replica_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM log_entries WHERE case_id = %s", (case_id,)).fetchone() == (1,)


def test_replica_reads_go_through_the_row_checks(replicated: Replicated, served: Api) -> None:
    """A row edited behind the service's back is refused on the replica as on the primary: the edit is
    replicated, replay paused, the row put back on the primary; only the replica still holds the edit."""
    api, cluster = served, replicated.cluster
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())

    def edit(old: str, new: str) -> None:
        with psycopg.connect(replicated.primary_url, autocommit=True) as conn:
            changed = conn.execute(
                "UPDATE case_timeline SET entry = replace(entry, %s, %s) WHERE case_id = %s", (old, new, case_id)
            ).rowcount
        assert changed == 1

    edit("CaseOpened", "CaseClosed")
    cluster.wait_caught_up()
    cluster.pause_replay()
    edit("CaseClosed", "CaseOpened")  # the primary is whole again; the replica is not
    answer = api.client.get(f"/v1/cases/{case_id}/timeline", headers=api.auth("auditor"))
    problem(answer, 503, "STATE_TAMPERED")
    cluster.resume_replay()
    cluster.wait_caught_up()
    assert timeline(api, case_id)[::2] == ("replica", [1])


def test_the_floor_and_routing_of_a_fresh_process(replicated: Replicated) -> None:
    """A process knows the newest checkpoint recorded outside the database from its start."""
    ledger = Ledger(replicated.settings(), clock=replicated.clock)
    try:
        signed = ledger.checkpoint()
        assert signed is not None
        assert ledger.replica is not None and ledger.replica.floor == signed.size
        replicated.cluster.wait_caught_up()
        fresh = ReadReplica(replicated.settings(), log_size=lambda tx: tlog.log_size(tx)[0])
        try:
            assert fresh.route(signed.size).source == "replica"
            assert fresh.route(signed.size + 1).source == "primary"  # nothing that large anywhere yet
        finally:
            fresh.close()
    finally:
        ledger.close()


def test_the_client_reads_the_held_size_from_its_remembered_note() -> None:
    assert held_size(b"origin\n42\nROOT=\n\n- sig\n") == 42
    assert held_size(None) == 0 and held_size(b"") == 0 and held_size(b"origin\nnot-a-size\n") == 0


def test_a_bad_held_checkpoint_header_is_400(served: Api) -> None:
    answer = served.client.get("/v1/public/releases", headers={HELD_HEADER: "-1"})
    problem(answer, 400, "BAD_ARGUMENT")


def test_sqlite_with_a_read_database_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerError) as refused:
        Settings(data_dir=tmp_path, read_database_url="postgresql://postgres@127.0.0.1:5433/ledger")
    assert refused.value.code == "READ_REPLICA_UNSUPPORTED" and "SQLite" in refused.value.message
    done = CliRunner().invoke(
        commands(), ["log", "checkpoint"],
        env={"EVIDENCE_LEDGER_DATA_DIR": str(tmp_path), "EVIDENCE_LEDGER_READ_DATABASE_URL": "postgresql://h/ledger"},
    )
    assert done.exit_code != 0 and "READ_REPLICA_UNSUPPORTED" in done.output and "SQLite" in done.output
    with pytest.raises(LedgerError, match="postgresql://"):
        Settings(
            data_dir=tmp_path, database_url="postgresql://postgres@127.0.0.1/x", read_database_url="sqlite:///x.db"
        )
