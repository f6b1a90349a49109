"""Slow and abusive clients against a real `evidence-ledger serve` on loopback (api.connections).

The server runs with the open-file limit a default operator gets (a soft RLIMIT_NOFILE of 1024) and
short timeouts from its settings, so each test takes seconds. Only SQLite: connection handling is
decided before any storage is touched.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.client import append_remote
from ledger.store import Ledger
from ops.procs import CLI, Server, serving
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.sockets import allow_open_files, open_slow, read_until_closed, still_open, wait_all_closed

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slow-clients"), pytest.mark.parametrize("backend", ["sqlite"])]

DEFAULT_OPEN_FILES = 1024  # the usual soft limit of a login shell or a systemd service
SLOW = 1100
HEADER_TIMEOUT = 6.0
BODY_TIMEOUT = 2.0


def _env(ledger: Ledger, **limits: str) -> dict[str, str]:
    env = {
        **os.environ,
        "EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir),
        "EVIDENCE_LEDGER_API_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "EVIDENCE_LEDGER_API_BODY_TIMEOUT": str(BODY_TIMEOUT),
    }
    return env | {f"EVIDENCE_LEDGER_API_{name.upper()}": value for name, value in limits.items()}


def _issue(env: dict[str, str]) -> str:
    issued = subprocess.run(
        [*CLI, "tokens", "issue", "--actor", "Det. A. Rivera", "--role", "investigator", "--expires-in", "1h"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip().splitlines()[-1]


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _healthz_within(url: str, seconds: float, **client: object) -> float:
    """Poll /healthz until it answers 200 (AssertionError after ``seconds``); the time it took."""
    started = time.monotonic()
    deadline = started + seconds
    with httpx.Client(timeout=1.0, **client) as http:  # type: ignore[arg-type]
        while time.monotonic() < deadline:
            try:
                if http.get(f"{url}/healthz").status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
    raise AssertionError(f"/healthz did not answer within {seconds} s")


@pytest.fixture
def env(ledger: Ledger) -> dict[str, str]:
    return _env(ledger, max_connections_per_address="5000")  # every test socket comes from 127.0.0.1


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    with serving(env, tmp_path / "server.log", open_files=DEFAULT_OPEN_FILES) as running:
        yield running


def test_1100_slow_heads_neither_exhaust_the_server_nor_stop_appends(
    ledger: Ledger, env: dict[str, str], server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    actors = Actors.register(ledger)
    token = _issue(env)
    allow_open_files(SLOW + 256)
    slow = open_slow(_port(server), SLOW)
    try:
        took = _healthz_within(server.url, 5.0)
        held = sum(still_open(sock) for sock in slow)
        # the server kept (nearly) its whole connection budget of slow heads while it answered
        assert 400 <= held <= 512, held
        receipt = append_remote(
            server.url, token, new_case_id(), "CaseOpened", case_opened(), actors.keys["investigator"]
        )
        assert receipt["seq"] == 1
        with capsys.disabled():
            print(f"\n/healthz answered in {took * 1000:.0f} ms with {SLOW} slow heads sent ({held} held open)")
        wait_all_closed(slow, time.monotonic() + HEADER_TIMEOUT + 5)
    finally:
        for sock in slow:
            sock.close()
    assert server.process.poll() is None
    assert not any("Too many open files" in line for line in server.log_lines())


def test_a_stalled_body_is_answered_408_and_closed(ledger: Ledger, env: dict[str, str], server: Server) -> None:
    Actors.register(ledger)
    token = _issue(env)
    head = (
        "POST /v1/sealed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    [sock] = open_slow(_port(server), 1, head + b'{"a')
    try:
        answer = read_until_closed(sock, time.monotonic() + BODY_TIMEOUT + 5)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert _healthz_within(server.url, 5.0) >= 0


def test_the_per_address_cap_refuses_at_once(ledger: Ledger, tmp_path: Path) -> None:
    env = _env(ledger, max_connections_per_address="8")
    with serving(env, tmp_path / "server.log", open_files=DEFAULT_OPEN_FILES) as server:
        held = open_slow(_port(server), 8)
        try:
            [refused] = open_slow(_port(server), 1, b"")
            answer = read_until_closed(refused, time.monotonic() + 5)
            refused.close()
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:80]
            assert all(still_open(sock) for sock in held)
            # another address is not affected (127.0.0.2 is loopback too)
            transport = httpx.HTTPTransport(local_address="127.0.0.2")
            assert _healthz_within(server.url, 5.0, transport=transport) >= 0
            wait_all_closed(held, time.monotonic() + HEADER_TIMEOUT + 5)
        finally:
            for sock in held:
                sock.close()
        assert _healthz_within(server.url, 5.0) >= 0  # the address's slots were given back
