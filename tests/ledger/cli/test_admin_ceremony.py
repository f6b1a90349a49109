"""The trust-root admin key off the server: init with its public key only, an offline-signed genesis,
registry changes signed where the admin key is (locally, offline with --head/--out, or to a server),
and demo mode saying loudly that it keeps the key in the data dir."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner, Result

from ledger.cli.app import app, commands
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.keys import key_id, load_private_key
from ledger.settings import Settings
from ledger.store import Ledger
from tests.support.api import Api, running_api
from tests.support.cases import case_opened, new_case_id
from tests.support.ledgers import ORIGIN

commands()


@pytest.fixture
def cli(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run the command line against one data dir (and, for PostgreSQL, one fresh database)."""
    data_dir = tmp_path / "server" / "data"
    monkeypatch.setenv("EVIDENCE_LEDGER_DATA_DIR", str(data_dir))
    if database_url:
        monkeypatch.setenv("EVIDENCE_LEDGER_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(app, [str(a) for a in args])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run.data_dir = data_dir  # type: ignore[attr-defined]
    run.settings = Settings(data_dir=data_dir, database_url=database_url)  # type: ignore[attr-defined]
    yield run


def _offline_admin(run: Any, tmp_path: Path) -> Path:
    offline = tmp_path / "offline"
    offline.mkdir()
    run("keys", "new", "--name", "admin", "--out", offline / "admin.pem")
    return offline / "admin.pem"


def _private_pems(root: Path) -> dict[str, bytes]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and b"PRIVATE KEY" in path.read_bytes():
            found[str(path)] = path.read_bytes()
    return found


def test_production_init_keeps_no_admin_private_key_and_takes_an_offline_genesis(
    cli: Any, tmp_path: Path
) -> None:
    run = cli
    admin_pem = _offline_admin(run, tmp_path)
    admin = load_private_key(admin_pem)
    init = run("init", "--origin", ORIGIN, "--admin-public-key", f"{admin_pem}.pub")
    # the admin key is off the server; the keystore here is the demo one (tests/ledger/cli/test_sealed_cli.py
    # covers `init --keystore-dir`), and says so
    assert "WARNING: DEMO MODE. The trust-root" not in init.output and "keys genesis" in init.output
    assert f"trust-root admin key id: {key_id(admin)}" in init.output
    admin_pem_bytes = admin.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert admin_pem_bytes not in _private_pems(run.data_dir).values()
    assert not (run.data_dir / "keys" / "admin.pem").exists()

    with Ledger(run.settings) as ledger:  # nothing can be appended before the genesis
        assert ledger.registry_state() is None and not ledger.admin_key_on_server
    request = run.data_dir / "genesis-request.json"
    wrong = tmp_path / "offline" / "other.pem"
    run("keys", "new", "--name", "other", "--out", wrong)
    refused = run("keys", "genesis", "--admin-key", wrong, "--request", request, "--out", tmp_path / "x", ok=False)
    assert refused.exit_code == 2 and "BAD_KEY" in refused.output

    genesis = tmp_path / "offline" / "genesis.jsonl"
    run("keys", "genesis", "--admin-key", admin_pem, "--request", request, "--out", genesis)
    submitted = json.loads(run("keys", "submit", genesis, "--json").stdout)
    assert [r["seq"] for r in submitted] == [1, 2]
    with Ledger(run.settings) as ledger:
        state = ledger.registry_state()
        assert state.root_key_id == key_id(admin)
        assert [k.role for k in state.keys] == ["admin", "service"]
        assert ledger.latest_checkpoint() is not None

    investigator = tmp_path / "rivera.pem"
    run("keys", "new", "--name", "rivera", "--out", investigator)
    no_key = run("keys", "register", "--public-key", f"{investigator}.pub", "--actor", "Det. Rivera",
                 "--role", "investigator", ok=False)
    assert no_key.exit_code == 2 and "--admin-key" in no_key.output
    run("keys", "register", "--public-key", f"{investigator}.pub", "--actor", "Det. Rivera",
        "--role", "investigator", "--admin-key", admin_pem)

    # Air-gapped: the head goes to the offline machine, the signed envelope comes back.
    head = tmp_path / "offline" / "head.json"
    head.write_text(run("keys", "head").stdout)
    assert json.loads(head.read_text())["version"] == 3
    chen = tmp_path / "chen.pem"
    run("keys", "new", "--name", "chen", "--out", chen)
    signed = tmp_path / "offline" / "chen.json"
    run("keys", "register", "--public-key", f"{chen}.pub", "--actor", "Sgt. Chen", "--role", "supervisor",
        "--admin-key", admin_pem, "--head", head, "--out", signed)
    assert json.loads(run("keys", "submit", signed, "--json").stdout)[0]["seq"] == 4
    stale = run("keys", "submit", signed, "--json")  # the same envelope again: idempotent
    assert json.loads(stale.stdout)[0]["seq"] == 4
    run("append", new_case_id(), "CaseOpened", "--key", investigator, "--body", json.dumps(case_opened()))

    audit = run("audit", "--trust-root", key_id(admin), "--json", ok=False)
    assert audit.exit_code == 0, audit.output


def test_demo_mode_says_so_at_init_and_in_readiness(cli: Any) -> None:
    init = cli("init", "--origin", ORIGIN)
    assert "WARNING: DEMO MODE" in init.output and "admin.pem" in init.output
    with Ledger(cli.settings) as ledger:
        assert ledger.admin_key_on_server
        with running_api(ledger) as api:
            ready = api.client.get("/readyz")
            answer = ready.json()
            tiles = answer.pop("tiles")  # the genesis entries are published once the checkpointer has run
            assert tiles["error"] is None and tiles["conflicts"] == 0 and tiles["size"] in (0, 2)
            assert ready.status_code == 200 and answer == {
                "status": "ready", "admin_key_on_server": True, "keystore_in_data_dir": True,
                "profile": "standard", "min_witnesses": 0, "witnessed_size": 0,
            }


def test_readiness_waits_for_the_genesis_and_reports_no_admin_key(cli: Any, tmp_path: Path) -> None:
    admin_pem = _offline_admin(cli, tmp_path)
    cli("init", "--origin", ORIGIN, "--admin-public-key", f"{admin_pem}.pub")
    genesis = tmp_path / "genesis.jsonl"
    with Ledger(cli.settings) as ledger:
        from fastapi.testclient import TestClient

        from api.app import create_app

        with TestClient(create_app(ledger=ledger)) as client:
            waiting = client.get("/readyz")
            assert waiting.status_code == 503 and waiting.json()["code"] == "NOT_READY"
            cli("keys", "genesis", "--admin-key", admin_pem, "--request", cli.data_dir / "genesis-request.json",
                "--out", genesis)
            cli("keys", "submit", genesis)
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["admin_key_on_server"] is False


def test_an_admin_registers_keys_through_the_api_with_a_key_the_server_never_holds(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.envelope.keys import generate_key_pair

    with running_api(ledger) as api:
        assert isinstance(api, Api)
        runner = CliRunner()
        new_key = tmp_path / "okafor.pem"
        generate_key_pair(new_key)
        admin_pem = ledger.data_dir / "keys" / "admin.pem"  # stands in for a key on the admin's workstation
        token = api.issue("admin", expires_in=timedelta(hours=1))
        from ledger import client as client_module

        real = client_module.RemoteLedger

        def through_test_client(server: str, token: str | None = None, **kw: Any) -> Any:
            return real(server, token, client=api.client, clock=ledger.clock, **kw)

        monkeypatch.setattr(client_module, "RemoteLedger", through_test_client)
        result = runner.invoke(
            app,
            ["keys", "register", "--public-key", f"{new_key}.pub", "--actor", "ADA Okafor", "--role", "prosecutor",
             "--authority", "middlesex_da", "--admin-key", str(admin_pem), "--server", "http://testserver",
             "--token", token, "--json"],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["case_id"] == REGISTRY_CASE_ID
        keys = api.client.get("/v1/keys", headers=api.auth("auditor")).json()["keys"]
        assert any(k["actor"] == "ADA Okafor" for k in keys)


def test_a_genesis_signed_by_another_key_than_the_pinned_admin_is_refused(cli: Any, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ledger.bootstrap import genesis_envelopes
    from ledger.envelope.keys import generate_key_pair, load_public_key, raw_public_key

    admin_pem = _offline_admin(cli, tmp_path)
    cli("init", "--origin", ORIGIN, "--admin-public-key", f"{admin_pem}.pub")
    impostor = generate_key_pair(tmp_path / "impostor.pem")
    service = raw_public_key(load_public_key(cli.data_dir / "keys" / "service.pem.pub"))
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(b"".join(raw + b"\n" for raw in genesis_envelopes(impostor, ORIGIN, service, now=datetime.now(UTC))))
    refused = cli("keys", "submit", forged, ok=False)
    assert refused.exit_code == 1 and "NOT_THE_TRUST_ROOT" in refused.output
    with Ledger(cli.settings) as ledger:
        assert ledger.registry_state() is None and ledger.log_size() == 0
