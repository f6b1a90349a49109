"""`verify --server URL`'s standard-library client (ledger.verify.log_server): bounded, no redirects,
errors mapped to the exit-3 codes, a proof of another log refused before it can look like a fork."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from domain.errors import LedgerError, MalformedInputError
from ledger.verify.log_server import MAX_ANSWER, LogServer

HASH = bytes(range(32))
ANSWERS: dict[str, tuple[int, bytes, dict[str, str]]] = {
    "/v1/log/checkpoint": (200, b"example.org/log\n5\nAAAA\n\n", {}),
    "/v1/log/proof/consistency": (
        200, json.dumps({"consistency": [base64.b64encode(HASH).decode()], "first": 3, "second": 5}).encode(), {}
    ),
    "/moved": (302, b"", {"Location": "/v1/log/checkpoint"}),
    "/huge": (200, b"x" * (MAX_ANSWER + 1), {}),
    "/missing": (404, b'{"code": "UNKNOWN_TREE_SIZE"}', {}),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body, headers = ANSWERS.get(self.path.split("?", 1)[0], (404, b"", {}))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetches_checkpoint_and_proof(url: str) -> None:
    server = LogServer(url)
    assert server.origin() == "example.org/log"
    assert server.proofs_for("example.org/log")(3, 5) == [HASH]


def test_a_proof_of_another_log_is_refused_as_bad_argument(url: str) -> None:
    with pytest.raises(MalformedInputError) as caught:
        LogServer(url).proofs_for("other.example/log")(3, 5)
    assert caught.value.code == "BAD_ARGUMENT" and "other.example/log" in caught.value.message


@pytest.mark.parametrize("path", ["/moved", "/huge", "/missing"])
def test_redirects_oversized_and_error_answers_are_bad_responses(url: str, path: str) -> None:
    with pytest.raises(LedgerError) as caught:
        LogServer(url).get(path)
    assert caught.value.code == "BAD_RESPONSE"


def test_unreachable_and_malformed_urls() -> None:
    with pytest.raises(LedgerError) as caught:
        LogServer("http://127.0.0.1:9", timeout=5).checkpoint()
    assert caught.value.code == "SERVER_UNREACHABLE" and "127.0.0.1:9" in caught.value.message
    with pytest.raises(MalformedInputError):
        LogServer("127.0.0.1:8000")
