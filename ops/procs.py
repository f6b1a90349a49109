"""Helpers shared by the benchmarks and harnesses that drive a real `evidence-ledger serve` on loopback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CLI = [str(Path(sys.executable).with_name("evidence-ledger"))]


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


@dataclass
class Server:
    """A running `evidence-ledger serve` process and where its output goes."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()


def wait_ready(server: Server, timeout: float = 60.0) -> None:
    """Poll /readyz until it answers 200; fail with the server's last log lines if it exits or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError("server exited:\n" + "\n".join(server.log_lines()[-30:]))
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready:\n" + "\n".join(server.log_lines()[-30:]))


@contextmanager
def serving(env: dict[str, str], log_path: Path, *, open_files: int | None = None) -> Iterator[Server]:
    """`evidence-ledger serve` on a free loopback port with ``env``, ready, until the block ends
    (then SIGTERM, and SIGKILL after 30 s). ``open_files`` sets the server's soft RLIMIT_NOFILE."""
    port = free_port()

    def limit_open_files() -> None:
        if open_files is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=limit_open_files if open_files is not None else None,
        )
    running = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_ready(running)
        yield running
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM (the service's clean shutdown), then SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
