"""The two console scripts: `evidence-ledger-verify` needs only the base package; `evidence-ledger`
without the ``server`` extra says what to install instead of printing a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.support.bundles import base_distributions, run_offline

WITHOUT_SERVER_EXTRA = """
import sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pydantic_settings", "eventsourcing", "fastapi", "psycopg", "uvicorn", "httpx"):
            raise ModuleNotFoundError("No module named " + repr(name), name=name)
        return None
sys.meta_path.insert(0, NotInstalled())
sys.argv = ["evidence-ledger", *sys.argv[1:]]
from api.console import main
main()
"""


def test_the_base_install_leaves_out_the_server_stack() -> None:
    base = {canonicalize_name(d) for d in base_distributions()}
    assert {"cryptography", "rfc8785", "typer", "evidence-ledger"} <= base
    server = {"fastapi", "starlette", "uvicorn", "eventsourcing", "psycopg", "httpx", "structlog", "pydantic-settings"}
    assert base & server == set()


def test_the_offline_verifier_runs_on_the_base_install() -> None:
    result = run_offline("--help")
    assert result.returncode == 0, result.stderr
    assert "verify" in result.stdout and "trust" in result.stdout
    assert "LEAKED" not in result.stderr and "Traceback" not in result.stderr


def without_server_extra(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER_EXTRA, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_evidence_ledger_without_the_server_extra_names_it(tmp_path: Path) -> None:
    result = without_server_extra("init", "--data-dir", str(tmp_path / "d"), "--origin", "example.org/log")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "pip install 'evidence-ledger[server]'" in result.stderr
    assert not (tmp_path / "d").exists()


def test_evidence_ledger_without_the_server_extra_still_verifies(tmp_path: Path) -> None:
    help_text = without_server_extra("--help")
    assert help_text.returncode == 0 and "verify" in help_text.stdout and "serve" not in help_text.stdout
    missing = without_server_extra("verify", str(tmp_path / "missing.zip"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "missing.zip" in missing.stdout + missing.stderr


def test_evidence_ledger_with_the_server_extra_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for command in ("serve", "verify", "audit", "tokens", "keys", "db", "witness"):
        assert command in result.stdout
