"""The README's walk-through runs as written, and the README shows exactly that script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "ops" / "walkthrough.sh"


def test_readme_shows_the_walkthrough_script() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    body = SCRIPT.read_text("utf-8").split("set -euo pipefail\n", 1)[1]
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
