"""One HTTP transport (ledger.transport, re-exported by ledger.client) for every client of the project."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Callable

import httpx
import pytest

from domain.errors import ConflictError, DomainError, LedgerError, NotFoundError
from ledger.audit.source import AuditInputError, read_server, server_verifier_key
from ledger.client import (
    BadResponse,
    RemoteLedger,
    ServerUnreachable,
    Transport,
    append_remote,
    error_from_response,
    problem_code,
)
from ledger.envelope.dsse import REGISTRY_CASE_ID


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens (the port was bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def mock(handler: httpx.MockTransport | None = None, **answers: Callable[[], httpx.Response]) -> httpx.Client:
    """A client whose server answers ``/v1/a`` with ``answers["v1_a"]()`` (404 for any other path)."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = answers.get(request.url.path.strip("/").replace("/", "_"))
        return httpx.Response(404) if answer is None else answer()

    return httpx.Client(transport=handler or httpx.MockTransport(handle), base_url="http://ledger.test")


def test_a_refused_connection_is_server_unreachable_naming_the_url(refused_url: str) -> None:
    with RemoteLedger(refused_url, "t0k", timeout=2) as remote, pytest.raises(ServerUnreachable) as caught:
        remote.case_head(REGISTRY_CASE_ID)
    assert caught.value.code == "SERVER_UNREACHABLE"
    assert f"{refused_url}/v1/keys" in caught.value.message
    assert caught.value.refs == {"url": f"{refused_url}/v1/keys"}
    assert "t0k" not in caught.value.message


def test_every_client_reports_the_same_unreachable_error(refused_url: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    calls = [
        lambda: append_remote(refused_url, "t0k", "0" * 32, "CaseOpened", {}, Ed25519PrivateKey.generate()),
        lambda: read_server(refused_url, "t0k"),
        lambda: server_verifier_key(refused_url),
        lambda: Transport(timeout=2).request("POST", f"{refused_url}/add-checkpoint", content=b"old 0\n\n"),
    ]
    for call in calls:
        with pytest.raises(LedgerError) as caught:
            call()
        assert caught.value.code == "SERVER_UNREACHABLE" and refused_url in caught.value.message


def test_problem_answers_become_their_domain_error_classes() -> None:
    def problem(status: int, code: str) -> Callable[[], httpx.Response]:
        return lambda: httpx.Response(
            status, json={"status": status, "code": code, "detail": f"refused {code}", "refs": {"seq": 3}},
            headers={"Content-Type": "application/problem+json"},
        )

    client = mock(
        v1_a=problem(404, "CASE_NOT_FOUND"), v1_b=problem(409, "VERSION_CONFLICT"), v1_c=problem(422, "RULE"),
    )
    with Transport(client=client) as http:
        for path, cls, code in (
            ("/v1/a", NotFoundError, "CASE_NOT_FOUND"), ("/v1/b", ConflictError, "VERSION_CONFLICT"),
            ("/v1/c", DomainError, "RULE"),
        ):
            with pytest.raises(cls) as caught:
                http.call("GET", path)
            assert caught.value.code == code and caught.value.refs == {"seq": 3}
            assert caught.value.message == f"refused {code}"
        answer = http.request("GET", "/v1/a")  # request() hands back every answer as it is
        assert answer.status_code == 404 and problem_code(answer) == "CASE_NOT_FOUND"
    assert error_from_response(httpx.Response(418)).code == "HTTP_418"
    assert problem_code(httpx.Response(500, json=[1, 2])) == ""


def test_the_audit_reader_keeps_refusals_as_unusable_input() -> None:
    client = mock(v1_log_key=lambda: httpx.Response(401, json={"code": "UNAUTHENTICATED", "detail": "no token"}))
    with pytest.raises(AuditInputError) as caught:
        server_verifier_key("http://ledger.test", client=client)
    assert caught.value.code == "UNUSABLE_INPUT" and "UNAUTHENTICATED" in caught.value.message


def test_redirects_are_not_followed_and_requests_ask_for_identity() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "http://elsewhere.test/"})

    with Transport(client=mock(httpx.MockTransport(handle)), headers={"Authorization": "Bearer x"}) as http:
        assert http.request("GET", "/v1/keys").status_code == 302
        with pytest.raises(LedgerError) as caught:
            http.call("GET", "/v1/keys")
    assert caught.value.code == "HTTP_302"
    assert [r.url.host for r in seen] == ["ledger.test", "ledger.test"]
    assert all(r.headers["accept-encoding"] == "identity" and r.headers["authorization"] == "Bearer x" for r in seen)


def test_answers_are_capped_and_never_decompressed() -> None:
    big = mock(v1_big=lambda: httpx.Response(200, content=b"x" * 1001))
    with Transport(client=big, max_response=1000) as http, pytest.raises(BadResponse) as caught:
        http.request("GET", "/v1/big")
    assert caught.value.code == "BAD_RESPONSE" and "1000 bytes" in caught.value.message
    with Transport(client=big, max_response=1001) as http:
        assert http.request("GET", "/v1/big").content == b"x" * 1001
    zipped = mock(
        v1_z=lambda: httpx.Response(200, content=gzip.compress(b"{}"), headers={"Content-Encoding": "gzip"})
    )
    with Transport(client=zipped) as http, pytest.raises(BadResponse):
        http.request("GET", "/v1/z")


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ReadTimeout("read timed out"), "(timed out after 2 s)"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "(connection refused)"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "(the host name does not resolve)"),
        (httpx.RemoteProtocolError("peer closed connection"), "(RemoteProtocolError: peer closed connection)"),
    ],
)
def test_an_unreachable_server_says_why_and_what_to_check(failure: httpx.HTTPError, reason: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    client = httpx.Client(transport=httpx.MockTransport(fail), base_url="http://ledger.test")
    with Transport(timeout=2, client=client) as http, pytest.raises(ServerUnreachable) as caught:
        http.call("GET", "/v1/keys")
    assert caught.value.message == (
        f"cannot reach http://ledger.test/v1/keys {reason}; is the server running? check the URL (--server)"
    )
