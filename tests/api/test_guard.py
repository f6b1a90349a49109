"""Over HTTP, on SQLite and PostgreSQL: the rollback guard, time travel, the replay feed with leaves,
and the background checkpointer's witnesses."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.settings import ApiSettings
from api.witness_app import make_server
from ledger.log import note
from ledger.log.rollback import latest_path
from ledger.log.witnessing import configure_witness
from ledger.store import Ledger
from ledger.witness.cosigner import Witness
from tests.support.api import Api, problem, running_api
from tests.support.audit import Raw
from tests.support.cases import (
    FOOTAGE_BYTES,
    Actors,
    case_opened,
    footage_captured,
    new_case_id,
    referral_made,
)
from tests.support.rollback import Snapshots


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


# -- rollback guard ----------------------------------------------------------------------------


@pytest.fixture
def rolled_back(make_ledger: Callable[..., Ledger], backend: str, tmp_path: Path) -> Iterator[tuple[Api, str]]:
    """A service started on a database restored from a backup 2 entries older than the last
    recorded checkpoint; yields (api, a case id that exists in the restored database)."""
    snaps = Snapshots(make_ledger, backend, tmp_path)
    try:
        ledger = make_ledger()
        actors = Actors.register(ledger)
        case_id = new_case_id()
        actors.ok("investigator", case_id, "CaseOpened", case_opened())
        ledger.checkpoint()
        ledger = actors.ledger = snaps.take(ledger)
        actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
        actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
        assert ledger.checkpoint() is not None  # recorded outside the database
        ledger = actors.ledger = snaps.restore(ledger)
        app = create_app(ledger=ledger, api_settings=ApiSettings())
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(app=app, client=client, ledger=ledger, actors=actors), case_id
    finally:
        snaps.drop()


def _refused(response: Any) -> dict[str, Any]:
    body = problem(response, 503, "ROLLBACK_DETECTED")
    assert "2 entries are missing" in body["detail"] and body["refs"]["missing"] == 2
    assert response.headers["retry-after"] == "60"
    return body


def test_after_a_rollback_every_write_is_503_and_reads_still_work(rolled_back: tuple[Api, str]) -> None:
    api, case_id = rolled_back
    assert api.runtime.write_block is not None
    size = api.ledger.log_size()
    _refused(api.post("investigator", case_id, "FootageCaptured", footage_captured()))
    _refused(api.client.post("/v1/keys", content=b"{}", headers=api.auth("admin")))
    _refused(api.client.post("/v1/sealed", content=b'{"name":"x"}', headers=api.auth("investigator")))
    _refused(api.client.post("/v1/evidence", content=FOOTAGE_BYTES, headers=api.auth("investigator")))
    assert not (api.ledger.data_dir / "footage").exists() or not any((api.ledger.data_dir / "footage").rglob("*"))
    _refused(api.client.get("/readyz"))
    assert api.ledger.log_size() == size
    for path in (f"/v1/cases/{case_id}", f"/v1/cases/{case_id}/events", "/v1/cases", "/v1/keys"):
        assert api.client.get(path, headers=api.auth("auditor")).status_code == 200, path
    assert api.client.get("/v1/log/checkpoint").status_code == 200
    assert api.client.get("/healthz").status_code == 200


def test_the_ledger_refuses_even_when_the_early_check_missed_it(rolled_back: tuple[Api, str]) -> None:
    api, case_id = rolled_back
    api.runtime._write_block = None  # the cached state is stale: the writer thread's own check remains
    _refused(api.post("investigator", case_id, "FootageCaptured", footage_captured()))
    _refused(api.client.post("/v1/sealed", content=b'{"name":"x"}', headers=api.auth("investigator")))
    _refused(api.client.post("/v1/evidence", content=b"x", headers=api.auth("investigator")))


def test_the_seal_command_refuses_after_a_rollback(rolled_back: tuple[Api, str]) -> None:
    from ledger.cli.app import commands

    app = commands()
    api, _ = rolled_back
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(api.ledger.data_dir)}
    if api.ledger.settings.database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = api.ledger.settings.database_url
    result = CliRunner().invoke(app, ["seal", "--data-file", "-"], input='{"name":"x"}', env=env)
    assert result.exit_code == 1 and "ROLLBACK_DETECTED" in result.output


# -- time travel -------------------------------------------------------------------------------


def test_a_case_as_it_was_at_a_leaf_or_a_time(api: Api) -> None:
    case_id = new_case_id()
    opened = api.ok("investigator", case_id, "CaseOpened", case_opened())
    captured = api.ok("investigator", case_id, "FootageCaptured", footage_captured())
    api.ok("investigator", case_id, "ReferralMade", referral_made())
    url, auditor = f"/v1/cases/{case_id}", api.auth("auditor")
    first = api.client.get(url, params={"at_index": opened["leaf_index"]}, headers=auditor).json()
    assert first["version"] == 1 and first["footage"] == [] and first["referrals"] == []
    assert first["as_of"] == {"leaf_index": opened["leaf_index"], "integrated_at": opened["integrated_at"],
                              "requested": None}
    second = api.client.get(url, params={"as_of": captured["integrated_at"]}, headers=auditor).json()
    assert second["version"] == 2 and [f["footage_id"] for f in second["footage"]] == ["ftg-1"]
    assert second["as_of"]["requested"] == captured["integrated_at"]
    now = api.client.get(url, headers=auditor).json()
    assert now["version"] == 3 and "as_of" not in now
    problem(api.client.get(url, params={"as_of": "2000-01-01T00:00:00Z"}, headers=auditor), 404, "CASE_NOT_FOUND")
    for params in ({"as_of": "yesterday"}, {"as_of": "2026-02-05T17:00:00"}, {"at_index": 10**9},
                   {"at_index": 0, "as_of": captured["integrated_at"]}):
        problem(api.client.get(url, params=params, headers=auditor), 400, "BAD_ARGUMENT")
    problem(api.client.get(url, params={"at_index": -1}, headers=auditor), 400, "INVALID_REQUEST")
    problem(api.client.get(url, params={"as_of": "x" * 65}, headers=auditor), 400, "INVALID_REQUEST")


def test_time_travel_keeps_the_prosecutor_404(api: Api) -> None:
    hidden, referred = new_case_id(), new_case_id()
    receipt = api.ok("investigator", hidden, "CaseOpened", case_opened())
    api.ok("investigator", referred, "CaseOpened", case_opened())
    first = api.ok("investigator", referred, "ReferralMade", referral_made())
    prosecutor = api.auth("prosecutor")
    params = {"at_index": receipt["leaf_index"]}
    invisible = problem(api.client.get(f"/v1/cases/{hidden}", params=params, headers=prosecutor), 404)
    absent = problem(api.client.get(f"/v1/cases/{new_case_id()}", params=params, headers=prosecutor), 404)
    assert {k: v for k, v in invisible.items() if k != "request_id"} == {
        k: v for k, v in absent.items() if k != "request_id"
    }
    seen = api.client.get(f"/v1/cases/{referred}", params={"at_index": first["leaf_index"]}, headers=prosecutor)
    assert seen.status_code == 200 and seen.json()["version"] == 2


# -- the replay feed ---------------------------------------------------------------------------


def test_the_replay_feed_carries_each_leaf_and_null_for_a_missing_event_row(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    second = api.ok("investigator", case_id, "FootageCaptured", footage_captured())
    auditor = api.auth("auditor")
    items = api.client.get("/v1/log/envelopes", params={"limit": 1000}, headers=auditor).json()["items"]
    for item in items:
        assert item["leaf"].encode("ascii") == api.client.get(f"/v1/log/entries/{item['leaf_index']}").content
        assert isinstance(item["envelope"], str) and item["envelope"]
    raw = Raw(api.ledger)
    raw.run(f"DELETE FROM {raw.events} WHERE originator_id = ? AND originator_version = 2", (raw.key(case_id),))
    page = api.client.get("/v1/log/envelopes", params={"after": second["leaf_index"] - 1, "limit": 1},
                          headers=auditor).json()
    assert page["items"] == [{"leaf_index": second["leaf_index"], "case_id": case_id, "seq": 2, "envelope": None,
                              "leaf": items[second["leaf_index"]]["leaf"]}]


# -- witnesses ---------------------------------------------------------------------------------


@pytest.fixture
def witness_url(ledger: Ledger, tmp_path: Path) -> Iterator[tuple[str, note.VerifierKey]]:
    log_vkey = note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())
    witness = Witness.create(tmp_path / "witness", "w.example/w1", str(log_vkey), origin=ledger.origin)
    server = make_server(witness, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", witness.verifier_key
    finally:
        server.shutdown()
        server.server_close()


def test_the_checkpointer_collects_cosignatures_and_records_them(
    ledger: Ledger, witness_url: tuple[str, note.VerifierKey]
) -> None:
    url, witness_key = witness_url
    configure_witness(ledger.data_dir, url, str(witness_key))
    log_vkey = note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())
    with running_api(ledger) as api:
        response = api.post("investigator", new_case_id(), "CaseOpened", case_opened(), wait=True)
        assert response.status_code == 201, response.text
        receipt = response.json()
        verified = note.verify_checkpoint(receipt["checkpoint"].encode(), log_vkey, [witness_key], 1)
        assert verified.checkpoint.size > receipt["leaf_index"]
        recorded = latest_path(ledger.data_dir).read_bytes()
        assert note.verify_checkpoint(recorded, log_vkey, [witness_key], 1).checkpoint.size == verified.checkpoint.size
        served = api.client.get("/v1/log/checkpoint").content
        note.verify_checkpoint(served, log_vkey, [witness_key], 1)


class SilentWitness:
    """Accepts connections, reads nothing, answers nothing; once released it hangs up on every caller."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.released = threading.Event()

    def run(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            if self.released.is_set():
                conn.close()
            else:
                self.held.append(conn)

    def caller_still_waiting(self, conn: socket.socket) -> bool:
        """True while the caller keeps the connection open (its request is still outstanding)."""
        timeout = conn.gettimeout()
        conn.setblocking(False)
        try:
            while True:
                try:
                    if conn.recv(65536) == b"":
                        return False
                except BlockingIOError:
                    return True
        finally:
            conn.settimeout(timeout)

    def release(self) -> None:
        self.released.set()
        for conn in list(self.held):
            conn.close()


@pytest.fixture
def silent_witness() -> Iterator[SilentWitness]:
    """A witness that accepts connections and never answers until released."""
    witness = SilentWitness()
    thread = threading.Thread(target=witness.run, daemon=True)
    thread.start()
    try:
        yield witness
    finally:
        witness.stop.set()
        thread.join()
        witness.release()
        witness.listener.close()


def test_a_silent_witness_never_blocks_appends(ledger: Ledger, silent_witness: SilentWitness) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    vkey = note.make_verifier_key("silent.example/w", Ed25519PrivateKey.generate().public_key(), 0x04)
    configure_witness(ledger.data_dir, silent_witness.url, str(vkey))
    # The witness timeout is far longer than these appends take: one that waited for the witness would still be waiting.
    with running_api(ledger, witness_timeout=30.0, wait_timeout=1.0) as api:
        api.ok("investigator", new_case_id(), "CaseOpened", case_opened())
        deadline = time.monotonic() + 10
        while not silent_witness.held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert silent_witness.held, "the checkpointer contacted the witness"
        for _ in range(10):
            api.ok("investigator", new_case_id(), "CaseOpened", case_opened())
        waited = api.post("investigator", new_case_id(), "CaseOpened", case_opened(), wait=True)
        assert waited.status_code == 201 and waited.json()["checkpoint"]
        assert silent_witness.caller_still_waiting(silent_witness.held[0]), (
            "the appends finished while the first witness request was still unanswered"
        )
        silent_witness.release()
