"""`sealed request | approve | disclose | shred` and `retention run` as an operator runs them, with a
keystore outside the data dir."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ledger.cli.app import app, commands
from tests.support import cases as support

commands()
ORIGIN = "cli.cambridgema.gov/evidence-ledger"
PERSON = {"name": "CANARY-SEALED-3307", "phone": "617-555-0142"}


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.runner = CliRunner()
        self.env = env

    def run(self, *args: str, code: int = 0) -> str:
        result = self.runner.invoke(app, list(args), env=self.env)
        assert result.exit_code == code, f"{args[:2]} exited {result.exit_code}: {result.output}"
        return result.output

    def json(self, *args: str) -> Any:
        as_json = [] if args[0] == "seal" or "--json" in args else ["--json"]  # seal prints JSON always
        return json.loads(self.run(*args, *as_json))


@pytest.fixture
def cli(tmp_path: Path, database_url: str | None) -> tuple[Cli, dict[str, Path]]:
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(tmp_path / "data")}
    if database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = database_url
    c = Cli(env)
    refused = c.run("init", "--origin", ORIGIN, "--keystore-dir", str(tmp_path / "data" / "ks"), code=2)
    assert "KEYSTORE_IN_DATA_DIR" in refused
    out = c.run("init", "--origin", ORIGIN, "--keystore-dir", str(tmp_path / "keystore"))
    assert f"keystore: {tmp_path / 'keystore'}" in out and "DEMO MODE. The keys of sealed" not in out
    c.env["EVIDENCE_LEDGER_KEYSTORE_DIR"] = str(tmp_path / "keystore")
    keys = {}
    for name, role in [("inv", "investigator"), ("sup", "supervisor"), ("law", "counsel")]:
        key = tmp_path / f"{name}.pem"
        c.run("keys", "new", "--name", name, "--out", str(key))
        c.json("keys", "register", "--public-key", f"{key}.pub", "--actor", name, "--role", role, "--json")
        keys[name] = key
    return c, keys


def _seal(c: Cli, tmp_path: Path) -> Any:
    data = tmp_path / "person.json"
    data.write_text(json.dumps(PERSON))
    return c.json("seal", "--data-file", str(data))


def test_two_person_disclosure_and_shred_through_the_cli(cli: tuple[Cli, dict[str, Path]], tmp_path: Path) -> None:
    c, keys = cli
    case_id = str(uuid.uuid4())
    sealed = _seal(c, tmp_path)
    ref = sealed["sealed_ref"]
    c.run("append", case_id, "CaseOpened", "--key", str(keys["inv"]), "--body", json.dumps(support.case_opened()))
    c.run("append", case_id, "ReportReceived", "--key", str(keys["inv"]), "--body",
          json.dumps(support.report_received(sealed)))
    common = [case_id, "--request-id", "dreq-1"]
    c.json("sealed", "request", *common, "--key", str(keys["inv"]), "--sealed-ref", ref, "--purpose", "court order",
           "--legal-basis", "Summons 17")
    out = c.run("sealed", "disclose", *common, "--key", str(keys["inv"]), code=1)
    assert out.startswith("error: DISCLOSURE_NOT_APPROVED") and PERSON["name"] not in out
    out = c.run("sealed", "approve", *common, "--key", str(keys["inv"]), code=1)
    assert out.startswith("error: ROLE_NOT_ALLOWED")
    c.json("sealed", "approve", *common, "--key", str(keys["law"]))
    target = tmp_path / "disclosed.json"
    c.run("sealed", "disclose", *common, "--key", str(keys["inv"]), "--out", str(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    disclosed = json.loads(target.read_text())
    assert disclosed["data"] == PERSON and disclosed["commitment"] == sealed["commitment"]
    out = c.run("sealed", "disclose", *common, "--key", str(keys["inv"]), "--out", str(target), code=2)
    assert "never overwritten" in out
    view = c.json("case", "show", case_id, "--json")
    assert view["disclosure_refusals"] == 1 and view["disclosures"][0]["approvals"][0]["actor"] == "law"
    out = c.json("sealed", "shred", case_id, "--key", str(keys["sup"]), "--sealed-ref", ref, "--reason", "done")
    assert out["key_destroyed"] is True
    out = c.run("sealed", "request", case_id, "--request-id", "dreq-2", "--key", str(keys["inv"]), "--sealed-ref", ref,
                "--purpose", "again", "--legal-basis", "x", code=1)
    assert out.startswith("error: SHREDDED")
    assert PERSON["name"] not in json.dumps(view) + "\n".join(
        c.run("case", "events", case_id).splitlines()
    )


def test_retention_run_prints_ids_and_counts(cli: tuple[Cli, dict[str, Path]], tmp_path: Path) -> None:
    c, keys = cli
    case_id = str(uuid.uuid4())
    sealed = _seal(c, tmp_path)
    c.run("append", case_id, "CaseOpened", "--key", str(keys["inv"]), "--body", json.dumps(support.case_opened()))
    c.run("append", case_id, "ReportReceived", "--key", str(keys["inv"]), "--body",
          json.dumps(support.report_received(sealed)))
    c.run("append", case_id, "CaseClosed", "--key", str(keys["sup"]), "--body", json.dumps({"disposition": "done"}))
    kept = c.json("retention", "run")
    assert kept["counts"] == {"shredded": 0, "blocked": 0, "finished": 0}
    done = c.json("retention", "run", "--after-days", "0")
    assert done["shredded"] == [{"case_id": case_id, "sealed_ref": sealed["sealed_ref"]}]
    assert done["counts"] == {"shredded": 1, "blocked": 0, "finished": 0}
    assert c.json("retention", "run", "--after-days", "0")["counts"]["shredded"] == 0
    text = c.run("retention", "run", "--after-days", "0")  # readable text by default
    assert text.startswith("retention: cases closed before ") and "0 sealed record(s) shredded" in text
