"""The Cambridge scenario through the command line, as an operator would run it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from ledger.cli.app import app, commands
from tests.support import cases as support

commands()
ORIGIN = "cli.cambridgema.gov/evidence-ledger"


class Cli:
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.runner = CliRunner()
        self.data_dir = data_dir
        self.env = {"EVIDENCE_LEDGER_DATA_DIR": str(data_dir), **env}

    def run(self, *args: str, code: int = 0, stdin: str | None = None) -> str:
        result = self.runner.invoke(app, list(args), env=self.env, input=stdin)
        assert result.exit_code == code, f"{args[:2]} exited {result.exit_code}: {result.output}"
        return result.output

    def json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self.run(*args, stdin=stdin))

    def append(
        self, case_id: str, kind: str, key: Path, body: dict[str, Any], code: int = 0, *, as_json: bool = False
    ) -> str:
        json_flag = ["--json"] if as_json else []
        return self.run("append", case_id, kind, "--key", str(key), "--body", json.dumps(body), *json_flag, code=code)


@pytest.fixture(autouse=True)
def no_pin_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer's pin file (~/.config/evidence-ledger/trust.toml) applies here."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("EVIDENCE_LEDGER_TRUST_FILE", raising=False)


@pytest.fixture
def cli(tmp_path: Path, database_url: str | None) -> Cli:
    env = {"EVIDENCE_LEDGER_DATABASE_URL": database_url} if database_url else {}
    c = Cli(tmp_path / "data", env)
    out = c.run("init", "--origin", ORIGIN)
    assert "trust-root admin key id" in out and "log verifier key: " + ORIGIN in out
    return c


def test_cambridge_scenario_through_the_cli(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {}
    for name, role, authority in [
        ("inv", "investigator", None),
        ("sup", "supervisor", None),
        ("ada", "prosecutor", "middlesex_da"),
    ]:
        key = tmp_path / f"{name}.pem"
        cli.run("keys", "new", "--name", name, "--out", str(key))
        assert key.stat().st_mode & 0o777 == 0o600
        extra = ["--authority", authority] if authority else []
        cli.json("keys", "register", "--public-key", f"{key}.pub", "--actor", name, "--role", role, *extra, "--json")
        keys[name] = key
    case_id = str(uuid.uuid4())
    sealed = cli.json(
        "seal", "--data-file", "-", stdin=json.dumps({"name": "CANARY-CLI-5521", "phone": "617-555-0199"})
    )
    assert set(sealed) == {"sealed_ref", "commitment"}
    cli.append(case_id, "CaseOpened", keys["inv"], support.case_opened())
    cli.append(case_id, "ReportReceived", keys["inv"], support.report_received(sealed))
    cli.append(case_id, "IncidentDocumented", keys["inv"], support.incident_documented())
    cli.append(case_id, "FootageCaptured", keys["inv"], support.footage_captured())
    for frm, to in (("CPD Evidence Unit", "CPD Video Lab"), ("CPD Video Lab", "CPD Evidence Unit")):
        cli.append(case_id, "CustodyTransferred", keys["inv"],
                   {"footage_id": "ftg-1", "from_custodian": frm, "to_custodian": to, "purpose": "review"})
    cli.append(case_id, "InvestigationHoldPlaced", keys["inv"], support.hold_placed())
    refused = cli.append(case_id, "FootageReleased", keys["sup"], support.footage_released(False), code=1)
    assert "RELEASE_UNDER_HOLD" in refused and "hold-1" in refused
    cli.append(case_id, "InvestigationHoldLifted", keys["sup"], {"hold_id": "hold-1", "reason": "DA cleared"})
    cli.append(case_id, "FootageDerivativeCreated", keys["inv"], support.derivative_created())
    cli.append(case_id, "FootageReleased", keys["sup"], support.footage_released())
    cli.append(case_id, "ReferralMade", keys["inv"], support.referral_made())
    cli.append(case_id, "ReferralAcknowledged", keys["ada"], {"referral_id": "ref-1", "note": "Received"})
    receipt = json.loads(cli.append(case_id, "CaseClosed", keys["sup"], {"disposition": "referred"}, as_json=True))
    assert receipt["seq"] == 13
    view = cli.json("case", "show", case_id, "--json")
    assert view["status"] == "closed" and view["footage"][0]["release_status"] == "released"
    assert view["footage"][0]["custody"]["steps"] == 3
    monkeypatch.setattr("ledger.cli.cases.CUSTODY_PAGE", 2)  # the chain is read page by page
    chain = [json.loads(line) for line in cli.run("case", "custody", case_id, "ftg-1").splitlines()]
    assert [(link["step"], link["from_custodian"], link["to_custodian"], link["seq"]) for link in chain] == [
        (1, None, "CPD Evidence Unit", 4), (2, "CPD Evidence Unit", "CPD Video Lab", 5),
        (3, "CPD Video Lab", "CPD Evidence Unit", 6),
    ]
    lines = cli.run("case", "events", case_id).splitlines()
    assert len(lines) == 13 and all(
        json.loads(line)["payloadType"].endswith("event.v1+json") for line in lines
    )
    assert "replayed" in cli.run("replay")
    assert cli.json("case", "show", case_id, "--json") == view
    assert [json.loads(line) for line in cli.run("case", "custody", case_id, "ftg-1").splitlines()] == chain
    assert "CANARY-CLI-5521" not in json.dumps(view) + "\n".join(lines)


def test_cli_errors_are_one_line_and_non_zero(cli: Cli, tmp_path: Path) -> None:
    out = cli.run("case", "show", str(uuid.uuid4()), code=1)
    assert out.strip().startswith("error: CASE_NOT_FOUND") and len(out.strip().splitlines()) == 1
    out = cli.run("case", "custody", str(uuid.uuid4()), "ftg-1", code=1)
    assert out.strip().startswith("error: CASE_NOT_FOUND") and len(out.strip().splitlines()) == 1
    out = cli.run(
        "append", "not-a-uuid", "CaseOpened", "--key", str(tmp_path / "none.pem"), "--body", "{}", code=2
    )
    assert out.strip().startswith("error:")
    key = tmp_path / "k.pem"
    cli.run("keys", "new", "--name", "k", "--out", str(key))
    out = cli.run(
        "append", str(uuid.uuid4()), "CaseOpened", "--key", str(key), "--body", '{"a":1,"a":2}', code=2
    )
    assert "duplicate" in out
    out = cli.append(str(uuid.uuid4()), "CaseOpened", key, support.case_opened(), code=1)
    assert "UNKNOWN_KEY" in out
    cli.run("keys", "new", "--name", "k", "--out", str(key), code=2)
    cli.run("init", "--origin", ORIGIN, code=2)


def test_log_commands_prove_and_verify_offline(cli: Cli, tmp_path: Path) -> None:
    vkey = cli.run("log", "key").strip()
    first = tmp_path / "cp1"
    first.write_text(cli.run("log", "checkpoint"))
    key = tmp_path / "inv.pem"
    cli.run("keys", "new", "--name", "inv", "--out", str(key))
    cli.run("keys", "register", "--public-key", f"{key}.pub", "--actor", "inv", "--role", "investigator")
    receipt = json.loads(cli.append(str(uuid.uuid4()), "CaseOpened", key, support.case_opened(), as_json=True))
    second = tmp_path / "cp2"
    second.write_text(cli.run("log", "checkpoint"))
    size1 = int(first.read_text().splitlines()[1])
    size2 = int(second.read_text().splitlines()[1])
    index = receipt["leaf_index"]
    leaf, proof, cproof = tmp_path / "leaf", tmp_path / "proof.json", tmp_path / "cons.json"
    cli.run("log", "entry", str(index), "--out", str(leaf))
    proof.write_text(cli.run("log", "prove-inclusion", str(index), "--size", str(size2)))
    cproof.write_text(cli.run("log", "prove-consistency", str(size1), str(size2)))
    assert "verified" in cli.run("log", "verify-checkpoint", "--vkey", vkey, str(second))
    assert "verified" in cli.run(
        "log",
        "verify-inclusion",
        "--vkey",
        vkey,
        "--checkpoint",
        str(second),
        "--leaf",
        str(leaf),
        "--proof",
        str(proof),
    )
    assert "verified" in cli.run(
        "log",
        "verify-consistency",
        "--vkey",
        vkey,
        "--old",
        str(first),
        "--new",
        str(second),
        "--proof",
        str(cproof),
    )
    leaf.write_bytes(leaf.read_bytes().replace(b'"v":1', b'"v":2'))
    cli.run(
        "log",
        "verify-inclusion",
        "--vkey",
        vkey,
        "--checkpoint",
        str(second),
        "--leaf",
        str(leaf),
        "--proof",
        str(proof),
        code=1,
    )
    cli.run("log", "verify-checkpoint", "--vkey", "not a key", str(second), code=2)


@pytest.mark.postgres
def test_unsafe_postgres_durability_is_refused(pg_database: str, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data", {"EVIDENCE_LEDGER_DATABASE_URL": pg_database})
    cli.run("init", "--origin", ORIGIN)
    name = pg_database.rsplit("/", 1)[1]
    with psycopg.connect(pg_database.rsplit("/", 1)[0] + "/test", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    out = cli.run("case", "show", str(uuid.uuid4()), code=2)
    assert "UNSAFE_DURABILITY" in out and "synchronous_commit" in out


def test_console_script_runs_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ledger", "init", "--origin", ORIGIN, "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "log verifier key" in result.stdout
