"""Helpers shared by the benchmarks and harnesses that drive a real `evidence-ledger serve` on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def issue_token(data_dir: Path, env: dict[str, str], *, actor: str, role: str = "investigator") -> str:
    """Issue a bearer token with the CLI, as an operator would; returns the token (its last line)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger",
            "tokens",
            "issue",
            "--actor",
            actor,
            "--role",
            role,
            "--expires-in",
            "1d",
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip().splitlines()[-1]
