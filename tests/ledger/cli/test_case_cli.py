"""`case new`, `case list`, `case show`, `events list|template|schema` and `--body @FILE | -`, as a
detective would use them (text by default, one stable JSON shape with --json)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.events import EVENT_TYPES
from domain.roles import ALLOWED
from ledger.cli.app import app, commands
from ledger.event_schema import example
from ops.procs import CLI, serving
from tests.support import cases as support

commands()
ORIGIN = "cases.cambridgema.gov/evidence-ledger"


class Cli:
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.runner = CliRunner()
        self.env = {"EVIDENCE_LEDGER_DATA_DIR": str(data_dir), **env}

    def result(self, *args: str, stdin: str | None = None) -> Any:
        return self.runner.invoke(app, list(args), env=self.env, input=stdin)

    def run(self, *args: str, code: int = 0, stdin: str | None = None) -> str:
        result = self.result(*args, stdin=stdin)
        assert result.exit_code == code, f"{args[:2]} exited {result.exit_code}: {result.output}"
        return str(result.stdout)

    def json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self.run(*args, stdin=stdin))


@pytest.fixture
def cli(tmp_path: Path, database_url: str | None) -> Cli:
    env = {"EVIDENCE_LEDGER_DATABASE_URL": database_url} if database_url else {}
    c = Cli(tmp_path / "data", env)
    c.run("init", "--origin", ORIGIN)
    return c


@pytest.fixture
def keys(cli: Cli, tmp_path: Path) -> dict[str, Path]:
    made = {}
    for name, role, authority in (("inv", "investigator", None), ("sup", "supervisor", None),
                                  ("ada", "prosecutor", "middlesex_da")):
        key = tmp_path / f"{name}.pem"
        cli.run("keys", "new", "--name", name, "--out", str(key))
        extra = ["--authority", authority] if authority else []
        cli.run("keys", "register", "--public-key", f"{key}.pub", "--actor", name, "--role", role, *extra)
        made[name] = key
    return made


def test_case_new_prints_the_id_and_refuses_a_used_number(cli: Cli, keys: dict[str, Path]) -> None:
    out = cli.run("case", "new", "--number", "CPD-2026-0101", "--key", str(keys["inv"]),
                  "--category", "property_damage", "--summary", "Car window broken")
    case_id = out.strip()
    assert str(uuid.UUID(case_id)) == case_id  # stdout is the id alone: CASE=$(evidence-ledger case new …)
    view = cli.json("case", "show", case_id, "--json")
    assert (view["case_number"], view["category"], view["summary"], view["version"]) == (
        "CPD-2026-0101", "property_damage", "Car window broken", 1)
    again = cli.result("case", "new", "--number", "CPD-2026-0101", "--key", str(keys["inv"]),
                       "--category", "violence", "--summary", "Another")
    assert again.exit_code == 1 and "DUPLICATE_CASE_NUMBER" in again.output and case_id in again.output
    opened = cli.json("case", "new", "--number", "CPD-2026-0102", "--key", str(keys["sup"]),
                      "--category", "violence", "--summary", "Use of force", "--json")
    assert set(opened) == {"case_id", "receipt"} and opened["receipt"]["case_id"] == opened["case_id"]
    assert opened["receipt"]["seq"] == 1
    # a prosecutor may not open a case: refused by the rules, exit 1
    refused = cli.result("case", "new", "--number", "CPD-2026-0103", "--key", str(keys["ada"]),
                         "--category", "violence", "--summary", "x")
    assert refused.exit_code == 1 and "ROLE_NOT_ALLOWED" in refused.output


def test_case_new_takes_the_rest_of_the_body_from_a_file_or_stdin(
    cli: Cli, keys: dict[str, Path], tmp_path: Path
) -> None:
    rest = tmp_path / "rest.json"
    rest.write_text(json.dumps({"category": "violence", "summary": "From a file"}), encoding="utf-8")
    from_file = cli.run("case", "new", "--number", "CPD-F-1", "--key", str(keys["inv"]), "--body", f"@{rest}").strip()
    from_stdin = cli.run("case", "new", "--number", "CPD-F-2", "--key", str(keys["inv"]), "--body", "-",
                         stdin=json.dumps({"category": "violence", "summary": "From stdin"})).strip()
    assert cli.json("case", "show", from_file, "--json")["summary"] == "From a file"
    assert cli.json("case", "show", from_stdin, "--json")["summary"] == "From stdin"
    # an option and the body that disagree, a missing field, a body that is no object: exit 2, nothing appended
    size = len(cli.json("case", "list", "--json")["items"])
    for args, stdin in (
        (("--category", "other", "--body", "-"), json.dumps({"category": "violence", "summary": "s"})),
        (("--summary", "no category"), None),
        (("--body", "-"), "[1, 2]"),
        (("--body", "-"), ""),
    ):
        result = cli.result("case", "new", "--number", "CPD-F-3", "--key", str(keys["inv"]), *args, stdin=stdin)
        assert result.exit_code == 2, (args, result.output)
    assert len(cli.json("case", "list", "--json")["items"]) == size


def test_append_reads_the_body_from_stdin_and_a_file(cli: Cli, keys: dict[str, Path], tmp_path: Path) -> None:
    case_id = cli.run("case", "new", "--number", "CPD-B-1", "--key", str(keys["inv"]), "--category", "violence",
                      "--summary", "Stdin bodies").strip()
    receipt = cli.json("append", case_id, "FootageCaptured", "--key", str(keys["inv"]), "--body", "-", "--json",
                       stdin=json.dumps(support.footage_captured()))
    assert receipt["seq"] == 2
    body = tmp_path / "hold.json"
    body.write_text(json.dumps(support.hold_placed()), encoding="utf-8")
    assert cli.json("append", case_id, "InvestigationHoldPlaced", "--key", str(keys["inv"]), "--body", f"@{body}", "--json")[
        "seq"] == 3
    bad = cli.result("append", case_id, "CaseClosed", "--key", str(keys["sup"]), "--body", "-", stdin='{"a": 1, "a": 2}')
    assert bad.exit_code == 2


def test_case_list_filters_and_pages(cli: Cli, keys: dict[str, Path]) -> None:
    ids = {}
    for n in range(3):
        number = f"CPD-L-{n}"
        ids[number] = cli.run("case", "new", "--number", number, "--key", str(keys["inv"]), "--category", "violence",
                              "--summary", "Listed").strip()
    cli.run("append", ids["CPD-L-1"], "CaseClosed", "--key", str(keys["sup"]), "--body", '{"disposition": "done"}')
    page = cli.json("case", "list", "--json")
    assert set(page) == {"items", "next"} and page["next"] is None
    assert sorted(v["case_id"] for v in page["items"]) == sorted(ids.values())
    found = cli.json("case", "list", "--number", "CPD-L-2", "--json")
    assert [v["case_id"] for v in found["items"]] == [ids["CPD-L-2"]]
    closed = cli.json("case", "list", "--status", "closed", "--json")
    assert [v["case_id"] for v in closed["items"]] == [ids["CPD-L-1"]]
    first = cli.json("case", "list", "--limit", "2", "--json")
    assert len(first["items"]) == 2 and first["next"] == first["items"][-1]["case_id"]
    rest = cli.json("case", "list", "--limit", "2", "--after", first["next"], "--json")
    assert len(rest["items"]) == 1 and rest["next"] is None
    text = cli.run("case", "list", "--limit", "2")
    assert "CPD-L" in text and f"--after {first['next']}" in text
    assert "no cases" in cli.run("case", "list", "--number", "CPD-NONE")


def test_case_show_lists_holds_releases_referrals_and_the_timeline(cli: Cli, keys: dict[str, Path]) -> None:
    case_id = cli.run("case", "new", "--number", "CPD-S-1", "--key", str(keys["inv"]), "--category",
                      "property_damage", "--summary", "Shown").strip()
    for who, kind, body in (
        ("inv", "FootageCaptured", support.footage_captured()),
        ("inv", "InvestigationHoldPlaced", support.hold_placed()),
        ("sup", "InvestigationHoldLifted", {"hold_id": "hold-1", "reason": "cleared"}),
        ("sup", "FootageReleased", support.footage_released(False)),
        ("inv", "ReferralMade", support.referral_made()),
    ):
        cli.run("append", case_id, kind, "--key", str(keys[who]), "--body", json.dumps(body))
    before = cli.json("case", "show", case_id, "--json")
    text = cli.run("case", "show", case_id)
    for part in ("Holds", "hold-1", "Releases", "executive_order", "Referrals", "ref-1", "Timeline",
                 "Footage ftg-1 released", "Referral ref-1 made"):
        assert part in text, part
    assert cli.json("case", "show", case_id, "--json") == before  # --json is the case view, unchanged


def test_events_list_template_and_schema(cli: Cli) -> None:
    listed = cli.json("events", "list", "--json")
    assert [item["type"] for item in listed["items"]] == list(EVENT_TYPES)
    for item in listed["items"]:
        assert set(item["roles"]) == {role for role, types in ALLOWED.items() if item["type"] in types}
    text = cli.run("events", "list")
    assert "FootageReleased" in text and "supervisor" in text
    result = cli.result("events", "template", "FootageReleased")
    assert result.exit_code == 0
    template = json.loads(result.stdout)
    assert set(template) == set(example("FootageReleased")) | {"derivative_id", "url"}
    assert template["url"].startswith("<optional") and "required: footage_id" in result.stderr
    assert json.loads(cli.run("events", "template", "FootageReleased", "--json")) == template
    schema = cli.json("events", "schema", "FootageReleased", "--json")
    assert schema["additionalProperties"] is False and "basis" in schema["required"]
    table = cli.run("events", "schema", "FootageReleased")
    assert "executive_order" in table and "optional" in table
    wrong = cli.result("events", "template", "footagereleased")
    assert wrong.exit_code == 2 and "did you mean FootageReleased" in wrong.output
    assert cli.result("events", "schema", "Nope").exit_code == 2


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
def test_case_new_and_list_through_a_server(tmp_path: Path, keys: dict[str, Path], cli: Cli) -> None:
    env = {**os.environ, **cli.env}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)

    issued = run("tokens", "issue", "--actor", "inv", "--role", "investigator", "--expires-in", "1h")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    with serving(env, tmp_path / "server.log") as server:
        remote = ("--server", server.url, "--token", token)
        opened = run("case", "new", "--number", "CPD-R-1", "--key", str(keys["inv"]), "--category", "violence",
                     "--summary", "Remote", *remote)
        assert opened.returncode == 0, opened.stderr
        case_id = opened.stdout.strip()
        again = run("case", "new", "--number", "CPD-R-1", "--key", str(keys["inv"]), "--category", "violence",
                    "--summary", "Remote again", *remote)
        assert again.returncode == 1 and "DUPLICATE_CASE_NUMBER" in again.stderr and case_id in again.stderr
        listed = run("case", "list", "--number", "CPD-R-1", "--json", *remote)
        assert listed.returncode == 0, listed.stderr
        assert [v["case_id"] for v in json.loads(listed.stdout)["items"]] == [case_id]
        shown = run("case", "show", case_id, "--json", *remote)  # the server's view: GET /v1/cases/{id}
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout) == cli.json("case", "show", case_id, "--json")
        text = run("case", "show", case_id, *remote)
        assert text.returncode == 0 and "Case CPD-R-1 opened (violence)" in text.stdout  # with its timeline
        assert text.stdout == cli.run("case", "show", case_id)  # the same page as from the data dir
        other = str(uuid.uuid4())
        missing = run("case", "show", other, *remote)
        assert missing.returncode == 1 and missing.stderr.startswith(f"error: CASE_NOT_FOUND: no case {other}")
        assert f"looked on the server {server.url}" in missing.stderr
        no_token = run("case", "show", case_id, "--server", server.url)
        assert no_token.returncode == 2 and "--server needs --token" in no_token.stderr
