"""Building ops/interop/gocheck for the Go interop tests: offline, against Debian's x/mod sources;
skipped with a loud reason without Go, a failure when CI is set."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GOCHECK_SOURCE = Path(__file__).resolve().parents[2] / "ops" / "interop" / "gocheck"
DEBIAN_X_MOD = Path("/usr/share/gocode/src/golang.org/x/mod")
INSTALL_HINT = "apt-get update && apt-get install -y golang-go golang-golang-x-mod-dev"


def go_or_skip() -> str:
    go = shutil.which("go")
    problem = None
    if go is None:
        problem = "the `go` command is not on PATH"
    elif not DEBIAN_X_MOD.is_dir():
        problem = f"Debian's golang.org/x/mod sources are missing ({DEBIAN_X_MOD})"
    if problem is None and go is not None:
        return go
    reason = f"GO INTEROP CHECK NOT RUN: {problem}. Install with: {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def build_gocheck(go: str, workdir: Path) -> Path:
    """Build ops/interop/gocheck offline into ``workdir``; fail the test if it does not build."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    env.setdefault("GOCACHE", str(workdir / "gocache"))  # go refuses to build without one (no $HOME in CI)
    binary = workdir / "gocheck"
    build = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=GOCHECK_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if build.returncode != 0:
        pytest.fail(f"building {GOCHECK_SOURCE} failed:\n{build.stderr}")
    return binary
