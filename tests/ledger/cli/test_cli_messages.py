"""What a detective sees when something goes wrong: every error line is ``error: CODE: message`` naming
the next step (and never the data typed), bad arguments are exit 2, a closed pipe ends quietly, every
command's help keeps all its words."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.case_state import CASE_STATUSES
from domain.events import EVENT_TYPES
from domain.roles import roles_for
from ledger.cli.app import commands
from ledger.cli.errors import BROKEN_PIPE
from ops.procs import CLI
from tests.support.cases import (
    case_opened,
    footage_captured,
    footage_released,
    hold_placed,
    new_case_id,
    referral_made,
)
from tests.support.cli import Cli, command_tree, error_line
from tests.support.domain import CANARY

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli(ledger: Any, database_url: str | None, tmp_path: Path) -> Cli:
    return Cli(ledger, database_url, tmp_path)


# -- 1. a case with no events ------------------------------------------------------------------------------------


def test_an_event_for_a_case_that_does_not_exist_says_so_and_how_to_open_or_find_it(cli: Cli) -> None:
    mistyped = new_case_id()
    line = error_line(cli.append(mistyped, "ReferralMade", "investigator", referral_made(), code=1))
    assert line.startswith(f"error: CASE_NOT_OPENED: case {mistyped} has no events yet (it does not exist)")
    assert "open it with a CaseOpened event (evidence-ledger case new, or POST /v1/cases/" in line
    assert "check the id (evidence-ledger case list, or GET /v1/cases)" in line
    assert f"looked in the data dir {cli.ledger.data_dir}" in line
    assert "the first event of a case must be" not in line and line.count(mistyped) == 2  # the id, the URL


# -- 2. a bad field said once -------------------------------------------------------------------------------------


def test_an_invalid_field_is_named_once(cli: Cli) -> None:
    case_id = new_case_id()
    cli.append(case_id, "CaseOpened", "investigator", case_opened())
    line = error_line(cli.append(case_id, "ReferralMade", "investigator", {**referral_made(), "basis": 5}, code=1))
    assert line.startswith("error: INVALID_BODY: basis: expected ") and "field=basis" not in line
    assert line.count("basis") == 1


# -- 3. the next step of a refusal ------------------------------------------------------------------------------


def test_a_release_under_a_hold_names_the_lifting_event_and_who_may_append_it(cli: Cli) -> None:
    case_id = new_case_id()
    cli.append(case_id, "CaseOpened", "investigator", case_opened())
    cli.append(case_id, "FootageCaptured", "investigator", footage_captured())
    cli.append(case_id, "InvestigationHoldPlaced", "investigator", hold_placed())
    line = error_line(cli.append(case_id, "FootageReleased", "supervisor", footage_released(False), code=1))
    lifters = roles_for("InvestigationHoldLifted")
    assert lifters and "RELEASE_UNDER_HOLD" in line and "hold_id=hold-1" in line
    assert "lift it first with an InvestigationHoldLifted event" in line
    assert all(f"'{role}'" in line for role in lifters)
    assert not any(f"'{role}'" in line for role in {"investigator", "prosecutor", "auditor"} - set(lifters))


# -- 4. event types and unexpected fields -------------------------------------------------------------------------


def test_a_lowercase_event_type_is_caught_before_the_key_is_read(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("append", new_case_id(), "referralmade", "--key", str(tmp_path / "no-such.pem"),
                     "--body", json.dumps(referral_made()), code=2)
    assert error_line(result) == (
        "error: UNKNOWN_EVENT_TYPE: unknown event type 'referralmade'; did you mean ReferralMade?"
        " (evidence-ledger events list)"
    )


def test_an_event_type_that_is_no_name_is_not_echoed(cli: Cli) -> None:
    line = error_line(cli.append(new_case_id(), f"Name {CANARY}", "investigator", case_opened(), code=2))
    assert "UNKNOWN_EVENT_TYPE" in line and CANARY not in line and "(evidence-ledger events list)" in line


def test_an_unexpected_field_is_counted_never_named_and_the_allowed_ones_listed(cli: Cli) -> None:
    body = {**case_opened(), f"caller {CANARY}": "x"}
    line = error_line(cli.append(new_case_id(), "CaseOpened", "investigator", body, code=1))
    allowed = ", ".join(sorted(case_opened()))
    assert line == (
        "error: INVALID_BODY: body: 1 unexpected field (not named: its name may hold data);"
        f" the allowed fields are: {allowed}"
    )


# -- 5. --server must be a URL ------------------------------------------------------------------------------------


def _server_commands() -> Iterator[tuple[str, Any]]:
    def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))
        if not getattr(command, "commands", None) and any("--server" in p.opts for p in command.params):
            yield " ".join(path), command

    yield from walk(command_tree())


SERVER_COMMANDS = dict(_server_commands())


def test_the_commands_taking_a_server_are_the_known_ones() -> None:
    assert {"append", "case new", "case list", "case show", "audit", "keys register", "keys revoke",
            "keys submit"} <= set(SERVER_COMMANDS)


@pytest.mark.parametrize("path", sorted(SERVER_COMMANDS))
@pytest.mark.parametrize("server", ["127.0.0.1:9", "ftp://127.0.0.1/", "http://"])
def test_a_server_without_a_scheme_is_a_bad_argument(path: str, server: str, tmp_path: Path) -> None:
    command = SERVER_COMMANDS[path]
    args = [*path.split()]
    for param in command.params:  # the required ones, each with a value of the right shape
        if param.required:
            value = new_case_id() if param.name == "case_id" else "1"
            args += [param.opts[0], value] if param.param_type_name == "option" else [value]
    args += ["--server", server]
    names = {param.name for param in command.params}  # `verify --server` takes no token and no data dir
    args += ["--token", "t0k"] if "token" in names else []
    args += ["--data-dir", str(tmp_path / "none")] if "data_dir" in names else []
    result = CliRunner().invoke(commands(), args, env={"EVIDENCE_LEDGER_DATA_DIR": None})
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert line.startswith("error: BAD_ARGUMENT: ")
    assert "--server must be an http:// or https:// URL" in line and "UnsupportedProtocol" not in line


# -- 6. every error line names its code ---------------------------------------------------------------------------


def test_init_on_a_ledger_says_it_is_one_and_how_to_use_it(cli: Cli) -> None:
    data_dir = cli.ledger.data_dir
    line = error_line(cli.run("init", "--origin", "example.org/el", "--data-dir", str(data_dir), code=2))
    assert line.startswith(f"error: CONFIGURATION: {data_dir} is already initialised: it is a ledger already")
    assert f"use it with --data-dir {data_dir}" in line and "another --data-dir to create a separate one" in line


def test_the_errors_the_command_line_raises_itself_name_a_code(cli: Cli, tmp_path: Path) -> None:
    case_id = new_case_id()
    cli.append(case_id, "CaseOpened", "investigator", case_opened())
    out = tmp_path / "case.zip"
    out.write_bytes(b"kept")
    assert error_line(cli.run("export", case_id, "--out", str(out), code=2)).startswith(
        f"error: FILE_EXISTS: {out} exists; refusing to overwrite a bundle")
    assert error_line(cli.run("keys", "new", "--name", "x", "--out", str(out), code=2)).startswith(
        "error: FILE_EXISTS: ")
    assert error_line(cli.run("case", "list", "--server", "http://127.0.0.1:9", code=2)) == (
        "error: BAD_ARGUMENT: --server needs --token (or EVIDENCE_LEDGER_TOKEN)")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert error_line(cli.run("verify", str(junk), code=2)).startswith("error: UNUSABLE_BUNDLE: unusable bundle: ")
    missing = cli.run("verify", str(tmp_path / "none.zip"), code=2)
    assert error_line(missing).startswith("error: ")
    failed = cli.run("log", "verify-checkpoint", str(junk), "--vkey", "not-a-key", code=2)
    assert error_line(failed).startswith("error: ")


# -- 7. case list's options --------------------------------------------------------------------------------------


def test_case_list_names_a_bad_cursor_and_refuses_an_unknown_status(cli: Cli) -> None:
    line = error_line(cli.run("case", "list", "--after", "nonsense", code=2))
    assert line.startswith("error: BAD_ARGUMENT: --after must be a case id") and "CASE_ID" not in line
    line = error_line(cli.run("case", "list", "--status", "bogus", code=2))
    assert line == f"error: BAD_ARGUMENT: --status must be one of: {', '.join(CASE_STATUSES)}"
    assert set(CASE_STATUSES) == {"open", "closed"}
    assert cli.run("case", "list", "--status", "closed", code=0).stdout.startswith("no cases")


# -- 8. a closed pipe ------------------------------------------------------------------------------------------


def _closed_pipe(env: dict[str, str], *args: str) -> tuple[int, bytes]:
    """Run the installed script with its stdout a pipe closed before it writes."""
    process = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read()
    process.stderr.close()
    return process.wait(timeout=120), err


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(cli: Cli) -> None:
    case_id = new_case_id()
    cli.append(case_id, "CaseOpened", "investigator", case_opened())
    env = {**os.environ, **cli.env, "PYTHONPATH": str(ROOT)}
    for args in (("keys", "list"), ("case", "show", case_id), ("case", "list", "--json"), ("events", "list"),
                 ("case", "list", "-h")):
        status, err = _closed_pipe(env, *args)
        assert (status, err) == (BROKEN_PIPE, b""), (args, status, err)
    # a command outside cli_errors (click's own ending), with no pin file in a fresh home
    home = {k: v for k, v in env.items() if k not in ("EVIDENCE_LEDGER_TRUST_FILE", "XDG_CONFIG_HOME")}
    assert _closed_pipe({**home, "HOME": str(cli.tmp_path)}, "trust", "show") == (BROKEN_PIPE, b"")
    # an error is still an error: it goes to stderr, not to the closed stdout
    status, err = _closed_pipe(env, "case", "show", new_case_id())
    assert status == 1 and err.startswith(b"error: CASE_NOT_FOUND: ")


def test_python_dash_m_ledger_ends_quietly_too(cli: Cli) -> None:
    env = {**os.environ, **cli.env, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "ledger", "keys", "list"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    assert (process.wait(timeout=120), process.stderr.read()) == (BROKEN_PIPE, b"")
    process.stderr.close()


# -- 9. --json on replay ---------------------------------------------------------------------------------------


def test_replay_prints_one_json_document(cli: Cli) -> None:
    cli.append(new_case_id(), "CaseOpened", "investigator", case_opened())
    result = cli.run("replay", "--json", code=0)
    doc = json.loads(result.stdout)
    assert doc == {"replayed": cli.ledger.log_size(), "resumed": False} and result.stderr == ""
    assert json.loads(cli.run("replay", "--resume", "--json", code=0).stdout) == {"replayed": 0, "resumed": True}
    assert cli.run("replay", code=0).stdout == f"replayed {cli.ledger.log_size()} entries\n"


# -- 10. help keeps every word; log checkpoints has a header --------------------------------------------------


def _all_commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(command_tree())


def _flat(text: str) -> str:
    """The words of a help screen, without the boxes and the wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_help_shows_every_word_of_every_docstring_and_option_help() -> None:
    """Rich reads ``[words]`` as markup and drops them; help texts escape ``[`` as ``\\[``, so what the help
    shows is the text with the escapes removed, every paragraph of it."""
    checked = 0
    for path, command in _all_commands():
        result = CliRunner().invoke(commands(), [*path, "-h"], env={"COLUMNS": "100"}, terminal_width=100)
        assert result.exit_code == 0, (path, result.output)
        shown = _flat(result.stdout)
        texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
        for text in texts:
            for paragraph in re.split(r"\n\s*\n", text):
                expected = _flat(paragraph.replace("\\[", "["))
                assert expected in shown, (" ".join(path), expected)
                checked += 1
    assert checked > 200
    listing = _flat(CliRunner().invoke(commands(), ["case", "list", "-h"], terminal_width=100).stdout)
    assert '(--json: {"items": [case views], "next": the cursor for --after, or null})' in listing


def test_log_checkpoints_has_a_header_row(cli: Cli) -> None:
    cli.append(new_case_id(), "CaseOpened", "investigator", case_opened())
    cli.run("log", "checkpoint", code=0)
    lines = cli.run("log", "checkpoints", code=0).stdout.splitlines()
    assert lines[0].split() == ["SIZE", "SIGNED", "AT", "ROOT", "HASH", "COSIGNATURES"]
    size, _, root, cosignatures = lines[-1].split()
    assert int(size) == cli.ledger.log_size() and re.fullmatch(r"[0-9a-f]{64}", root) and cosignatures == "0"
    assert all(lines[0].index("ROOT HASH") == line.index(line.split()[2]) for line in lines[1:])  # columns line up


def test_every_event_type_is_known_to_the_lowercase_check() -> None:
    from ledger.cli.events import type_name_arg

    for name in EVENT_TYPES:
        assert type_name_arg(name) == name
