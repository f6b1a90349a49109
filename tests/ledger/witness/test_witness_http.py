"""The witness's ASGI server (api.witness_app on uvicorn): the API's limits, c2sp tlog-witness answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.witness_app import WitnessServer, make_server
from ledger.witness.cosigner import Witness
from ledger.witness.server import MAX_BODY
from tests.support.witness import FakeLog, request_body

BODY_TIMEOUT = 1.5  # seconds a stalled body is waited for in these tests (10 s when served for real)


@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


@pytest.fixture
def server(tmp_path: Path, log: FakeLog) -> Iterator[WitnessServer]:
    witness = Witness.create(tmp_path / "witness", "w.example/w1", str(log.vkey))
    running = make_server(witness, "127.0.0.1", 0, body_timeout=BODY_TIMEOUT)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()
        thread.join(timeout=20)


def url(server: WitnessServer, path: str = "/add-checkpoint") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def raw_exchange(server: WitnessServer, request: bytes, *, timeout: float = 10) -> bytes:
    """Send ``request`` as is on a fresh connection; everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_answers_carry_no_server_header_and_are_not_cached(server: WitnessServer, log: FakeLog) -> None:
    with httpx.Client(trust_env=False, timeout=5) as http:
        answers = [
            http.get(url(server, "/healthz")),
            http.post(url(server), content=request_body(0, [], log.note(5))),
            http.post(url(server), content=request_body(0, [], log.note(9))),
            http.get(url(server)),
        ]
    assert [a.status_code for a in answers] == [200, 200, 409, 405]
    assert answers[3].headers["allow"] == "POST"
    for answer in answers:
        assert "server" not in answer.headers and answer.headers["cache-control"] == "no-store"
    assert answers[2].headers["content-type"] == "text/x.tlog.size"


def test_an_oversized_body_is_refused_with_413_before_it_is_read(server: WitnessServer) -> None:
    with httpx.Client(trust_env=False, timeout=5) as http:
        assert http.post(url(server), content=b"old 0\n\n" + b"x" * (MAX_BODY - 7)).status_code == 400
        refused = http.post(url(server), content=b"x" * (MAX_BODY + 1))
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "text/plain; charset=utf-8"
    assert refused.text == f"PAYLOAD_TOO_LARGE: request body is larger than {MAX_BODY} bytes\n"
    # announced but never sent: refused from the Content-Length alone
    head = raw_exchange(server, b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 1000000000\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")


def test_a_body_without_content_length_is_refused_with_411(server: WitnessServer) -> None:
    none = raw_exchange(server, b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n")
    assert none.startswith(b"HTTP/1.1 411 ") and none.endswith(b"\r\n\r\nContent-Length is required\n")
    chunked = raw_exchange(
        server,
        b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nold 0\n\n\r\n0\r\n\r\n",
    )
    assert chunked.startswith(b"HTTP/1.1 411 ")


def unanswered(conn: socket.socket) -> bool:
    """True while nothing has come back on ``conn`` (no answer, not closed)."""
    timeout = conn.gettimeout()
    conn.setblocking(False)
    try:
        conn.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        conn.settimeout(timeout)
    return False


def test_a_stalled_body_holds_no_one_else_and_is_answered_408(server: WitnessServer, log: FakeLog) -> None:
    body = request_body(0, [], log.note(5))
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as slow:
        slow.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: %d\r\n\r\n" % len(body))
        slow.sendall(body[: len(body) // 2])  # ... and then nothing more
        with httpx.Client(trust_env=False, timeout=5) as http:
            assert http.get(url(server, "/healthz")).text == "ok\n"
            cosigned = http.post(url(server), content=body)
        assert cosigned.status_code == 200 and cosigned.text.startswith("— w.example/w1 ")
        assert unanswered(slow), "served while the stalled request still waits for its body"
        answer = read_until_closed(slow)  # the server gives up on the stalled body and closes
    assert answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in answer.lower()
