"""Slow clients on loopback: sockets that send part of a request and then nothing."""

from __future__ import annotations

import resource
import selectors
import socket
import time

PARTIAL_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # never finished


def allow_open_files(count: int) -> None:
    """Raise this (test) process's soft open-file limit to ``count`` if the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def open_slow(port: int, count: int, payload: bytes = PARTIAL_HEAD, host: str = "127.0.0.1") -> list[socket.socket]:
    """``count`` connections to ``host:port`` that each sent ``payload`` and will send nothing more."""
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(payload)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def still_open(sock: socket.socket) -> bool:
    """True while the server has neither closed ``sock`` nor written to it."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False  # end of file, or an answer waiting to be read


def read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server writes to ``sock`` until it closes it (AssertionError past ``deadline``)."""
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
    raise AssertionError("the server did not close the connection in time")


def wait_all_closed(sockets: list[socket.socket], deadline: float) -> None:
    """Poll until the server has closed every socket in ``sockets`` (AssertionError past ``deadline``)."""
    pending = list(sockets)
    while pending and time.monotonic() < deadline:
        pending = [sock for sock in pending if still_open(sock)]
        if pending:
            time.sleep(0.1)
    assert not pending, f"{len(pending)} slow connections still open"
