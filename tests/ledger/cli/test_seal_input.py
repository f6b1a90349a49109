"""`evidence-ledger seal` takes personal data from a file or standard input, never from an argument:
arguments are visible to every local user (ps, /proc/PID/cmdline) and kept in shell history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ledger.cli.app import commands
from ledger.settings import Settings
from ledger.store import Ledger

ORIGIN = "seal.cambridgema.gov/evidence-ledger"
REPORTER = {"name": "CANARY-SEAL-Maria Lopez", "phone": "+1 617 555 0142"}


@pytest.fixture
def backend() -> str:
    """How the command reads its input does not depend on the database: SQLite only."""
    return "sqlite"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    result = CliRunner().invoke(commands(), ["init", "--origin", ORIGIN], env={"EVIDENCE_LEDGER_DATA_DIR": str(path)})
    assert result.exit_code == 0, result.output
    return path


def _seal(data_dir: Path, *args: str, stdin: str | None = None) -> Result:
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(data_dir)}
    return CliRunner().invoke(commands(), ["seal", *args], input=stdin, env=env)


def _sealed(data_dir: Path) -> list[Any]:
    with Ledger(Settings(data_dir=data_dir)) as ledger:
        with ledger.db.read() as tx:
            refs = [str(row[0]) for row in tx.query("SELECT sealed_ref FROM sealed_records", ())]
        return [ledger.sealed_store().unseal(ref)[0] for ref in refs]


@pytest.mark.parametrize("form", [["--data", json.dumps(REPORTER)], [f"--data={json.dumps(REPORTER)}"]])
def test_the_old_argument_form_is_refused_without_echoing_the_value(data_dir: Path, form: list[str]) -> None:
    result = _seal(data_dir, *form)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: BAD_ARGUMENT: --data is refused")
    assert "--data-file PATH" in lines[0] and "shell history" in lines[0]
    assert "CANARY" not in result.output and "555" not in result.output
    assert _sealed(data_dir) == []


def test_no_input_at_all_is_a_usage_error(data_dir: Path) -> None:
    result = _seal(data_dir)
    assert result.exit_code == 2 and "--data-file" in result.output
    assert _sealed(data_dir) == []


def test_a_file_is_sealed(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "reporter.json"
    source.write_text(json.dumps(REPORTER, ensure_ascii=False), encoding="utf-8")
    result = _seal(data_dir, "--data-file", str(source))
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"sealed_ref", "commitment"}
    assert "CANARY" not in result.output
    assert _sealed(data_dir) == [REPORTER]


def test_standard_input_is_sealed(data_dir: Path) -> None:
    reporter = {**REPORTER, "note": "habla español — prefiere WhatsApp"}
    result = _seal(data_dir, "--data-file", "-", stdin=json.dumps(reporter, ensure_ascii=False))
    assert result.exit_code == 0, result.output
    assert _sealed(data_dir) == [reporter]


@pytest.mark.parametrize(
    ("stdin", "reason"),
    [("", "empty"), ('{"name": "CANARY-SEAL", "name": "x"}', "not strict JSON"), ("CANARY-SEAL", "not strict JSON")],
)
def test_unusable_input_is_refused_without_echoing_it(data_dir: Path, stdin: str, reason: str) -> None:
    result = _seal(data_dir, "--data-file", "-", stdin=stdin)
    assert result.exit_code == 2 and reason in result.output and "CANARY" not in result.output
    assert _sealed(data_dir) == []


def test_a_missing_file_is_a_usage_error(data_dir: Path, tmp_path: Path) -> None:
    result = _seal(data_dir, "--data-file", str(tmp_path / "nope.json"))
    assert result.exit_code == 2 and "cannot read the data file" in result.output


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_the_data_never_appears_in_the_process_command_line(data_dir: Path) -> None:
    """While `seal --data-file -` waits for its input, its /proc/PID/cmdline holds no personal value."""
    env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger", "seal", "--data-file", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        assert process.stdin is not None
        process.stdin.write(json.dumps(REPORTER).encode()[:10])  # the process is running and reading
        process.stdin.flush()
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        deadline = time.monotonic() + 30
        while b"seal" not in cmdline and time.monotonic() < deadline:  # until exec has happened
            cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert b"seal" in cmdline and b"--data-file" in cmdline
        out, err = process.communicate(json.dumps(REPORTER).encode()[10:], timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err.decode()
    for value in REPORTER.values():
        assert value.encode() not in cmdline and value.encode() not in out + err
    assert _sealed(data_dir) == [REPORTER]
