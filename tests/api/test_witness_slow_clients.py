"""Slow and abusive clients against the witness server (uvicorn on loopback, api.connections)."""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.witness_app import WitnessLimits, make_server
from ledger.witness.cosigner import Witness
from tests.support.sockets import allow_open_files, open_slow, read_until_closed, still_open, wait_all_closed
from tests.support.witness import FakeLog

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slow-clients")]

LIMITS = WitnessLimits(header_timeout=2, body_timeout=1, max_connections=64, max_connections_per_address=1000)
SLOW = 200


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    log = FakeLog()
    witness = Witness.create(tmp_path / "witness", "w.example/w1", str(log.vkey))
    server = make_server(witness, "127.0.0.1", 0, limits=LIMITS)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _healthz(port: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=1.0) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(f"http://127.0.0.1:{port}/healthz").text == "ok\n":
                    return
            except httpx.HTTPError:
                pass
    raise AssertionError(f"/healthz did not answer within {seconds} s")


def test_slow_heads_are_evicted_then_timed_out(port: int) -> None:
    allow_open_files(2 * SLOW + 256)
    slow = open_slow(port, SLOW)
    try:
        _healthz(port)
        held = sum(still_open(sock) for sock in slow)
        assert 32 <= held <= LIMITS.max_connections, held  # the oldest heads made room for the newer
        wait_all_closed(slow, time.monotonic() + LIMITS.header_timeout + 5)
    finally:
        for sock in slow:
            sock.close()
    _healthz(port)


def test_a_stalled_checkpoint_body_is_answered_408(port: int) -> None:
    head = b"POST /add-checkpoint HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
    [sock] = open_slow(port, 1, head + b"old 0\n")
    try:
        answer = read_until_closed(sock, time.monotonic() + LIMITS.body_timeout + 5)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    _healthz(port)


def test_the_per_address_cap_answers_503(tmp_path: Path) -> None:
    log = FakeLog()
    witness = Witness.create(tmp_path / "witness", "w.example/w1", str(log.vkey))
    server = make_server(witness, "127.0.0.1", 0, limits=WitnessLimits(header_timeout=2, max_connections_per_address=4))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    held = open_slow(port, 4)
    try:
        [refused] = open_slow(port, 1, b"")
        answer = read_until_closed(refused, time.monotonic() + 5)
        refused.close()
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:80]
        assert all(still_open(sock) for sock in held)
        wait_all_closed(held, time.monotonic() + 2 + 5)
        _healthz(port)
    finally:
        for sock in held:
            sock.close()
        server.shutdown()
        server.server_close()


def test_a_connection_closes_after_its_last_allowed_request(tmp_path: Path) -> None:
    log = FakeLog()
    witness = Witness.create(tmp_path / "witness", "w.example/w1", str(log.vkey))
    server = make_server(witness, "127.0.0.1", 0, limits=WitnessLimits(max_requests_per_connection=2))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    try:
        [sock] = open_slow(server.server_address[1], 1, request)
        first = b""
        deadline = time.monotonic() + 5
        while not first.endswith(b"ok\n") and time.monotonic() < deadline:
            select.select([sock], [], [], 0.1)
            with contextlib.suppress(BlockingIOError):
                first += sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 ") and still_open(sock)
        assert b"connection: close" not in first.lower()
        sock.sendall(request)
        second = read_until_closed(sock, time.monotonic() + 5)  # the server closes after the 2nd answer
        sock.close()
        assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b"ok\n")
        assert b"\r\nconnection: close\r\n" in second.lower()  # said before closing, not just closed
    finally:
        server.shutdown()
        server.server_close()
