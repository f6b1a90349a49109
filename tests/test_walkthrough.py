"""The README's walk-through runs as written, and the README shows exactly that script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "ops" / "walkthrough.sh"
HTTP_SCRIPT = ROOT / "ops" / "walkthrough_http.sh"


@pytest.mark.parametrize("script", [SCRIPT, HTTP_SCRIPT], ids=["cli", "http"])
def test_readme_shows_the_walkthrough_script(script: Path) -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    body = script.read_text("utf-8").split("set -euo pipefail\n", 1)[1]
    assert body in readme


@pytest.mark.slow
def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("EVIDENCE_LEDGER_DATABASE_URL", None)
    result = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "walk")], capture_output=True, text=True, env=env, timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "RELEASE_UNDER_HOLD" in result.stderr
    assert "verified: leaf 5 is in cambridgema.gov/evidence-ledger" in result.stdout


@pytest.mark.slow
def test_http_walkthrough_runs_as_written(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("EVIDENCE_LEDGER_DATABASE_URL", None)
    result = subprocess.run(
        ["bash", str(HTTP_SCRIPT), str(tmp_path / "walk"), str(port)], capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert '"case_number":"CPD-2026-0002"' in result.stdout
    assert '"leaf_index":3' in result.stdout and "cambridgema.gov/evidence-ledger\n4\n" in result.stdout
