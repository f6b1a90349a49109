"""Hostile input: oversized, ambiguous or misbound bodies, bad parameters, internal failures."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.signing import build_envelope
from ledger.storage.sql import StorageError
from ledger.store import Ledger
from tests.support.api import Api, problem, running_api
from tests.support.cases import case_opened, new_case_id

MIB = 1024 * 1024


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def _drive(api: Api, path: str, headers: dict[str, str], chunks: int, *, declare: bool) -> tuple[int, int, bytes]:
    """Call the ASGI app directly with a body of ``chunks`` MiB sent 1 MiB at a time.

    Returns (status, chunks the app pulled, response body): the middleware must stop reading early.
    """
    pulled = 0
    chunk = b"[" + b"1," * (MIB // 2 - 1) + b"1"  # 1 MiB of JSON-ish bytes
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if declare:
        raw_headers.append((b"content-length", str(chunks * len(chunk)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": raw_headers,
        "client": ("127.0.0.1", 1234), "server": ("testserver", 80), "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= chunks:
            return {"type": "http.disconnect"}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(api.app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, pulled, body


def test_a_50_mb_body_is_refused_with_413_while_reading(api: Api) -> None:
    headers = api.auth("investigator")
    for path in ("/v1/sealed", f"/v1/cases/{new_case_id()}/events"):
        status, pulled, body = _drive(api, path, headers, 50, declare=False)
        assert status == 413 and pulled <= 2, (path, status, pulled)
        assert json.loads(body)["code"] == "PAYLOAD_TOO_LARGE"
        status, pulled, _ = _drive(api, path, headers, 50, declare=True)
        assert (status, pulled) == (413, 0)


def test_content_length_over_the_limit_is_413_before_authentication(api: Api) -> None:
    response = api.client.post("/v1/sealed", content=b"{}", headers={"Content-Length": str(50 * MIB)})
    problem(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    "body",
    [
        b'{"name":"a","name":"b"}',
        b'{"x":NaN}',
        b'{"x":Infinity}',
        b'{"x":1e400}',
        b'{"x":1.5}',
        b'{"x":123456789012345678901234567890}',
        b'\xef\xbb\xbf{"x":1}',
        b'{"x":"\xff"}',
        b'{"x":"\\ud800"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"x":1} trailing',
        b"",
    ],
)
def test_ambiguous_json_is_400(api: Api, body: bytes) -> None:
    response = api.client.post("/v1/sealed", content=body, headers=api.auth("investigator"))
    problem(response, 400, "MALFORMED_JSON")


def test_envelopes_must_be_canonical_correctly_signed_and_strict(api: Api) -> None:
    case_id = new_case_id()
    raw = api.envelope("investigator", case_id, "CaseOpened", case_opened())
    pretty = json.dumps(json.loads(raw), indent=1).encode()
    problem(api.post_raw(case_id, pretty, "investigator"), 400, "NON_CANONICAL")
    duplicated = raw[:-1] + b',"payload":"AAAA"}'
    problem(api.post_raw(case_id, duplicated, "investigator"), 400, "MALFORMED_JSON")
    data = json.loads(raw)
    sig = base64.b64decode(data["signatures"][0]["sig"])
    data["signatures"][0]["sig"] = base64.b64encode(bytes([sig[0] ^ 1]) + sig[1:]).decode()
    tampered = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    problem(api.post_raw(case_id, tampered, "investigator"), 400, "BAD_SIGNATURE")
    assert api.ledger.case_head(case_id) == (0, None)


def _signed(api: Api, *, case_id: str, origin: str | None = None, ahead: timedelta = timedelta(0)) -> bytes:
    return build_envelope(
        origin=origin or api.ledger.origin, case_id=case_id, event_type="CaseOpened", body=case_opened(),
        key=api.actors.keys["investigator"], seq=1, prev=None, occurred_at=api.ledger.clock() + ahead,
    )


def test_statements_from_the_future_are_400(api: Api) -> None:
    case_id = new_case_id()
    problem(api.post_raw(case_id, _signed(api, case_id=case_id, ahead=timedelta(minutes=6)), "investigator"), 400,
            "CLOCK_SKEW")
    ok = api.post_raw(case_id, _signed(api, case_id=case_id, ahead=timedelta(minutes=4)), "investigator")
    assert ok.status_code == 201, ok.text


def test_statements_bound_to_another_case_or_ledger_are_400(api: Api) -> None:
    case_id, other = new_case_id(), new_case_id()
    problem(api.post_raw(other, _signed(api, case_id=case_id), "investigator"), 400, "BINDING_MISMATCH")
    foreign = _signed(api, case_id=case_id, origin="other.example/ledger")
    problem(api.post_raw(case_id, foreign, "investigator"), 400, "BINDING_MISMATCH")
    problem(api.post_raw(REGISTRY_CASE_ID, _signed(api, case_id=REGISTRY_CASE_ID), "investigator"), 400,
            "WRONG_STREAM")
    assert api.ledger.case_head(case_id) == (0, None)


def test_invalid_parameters_are_400_without_echoing_the_input(api: Api) -> None:
    marker = "CANARY-PARAM-7f3a"
    responses = [
        api.client.get(f"/v1/log/entries/{marker}"),
        api.client.get("/v1/log/proof/inclusion", params={"index": marker}),
        api.client.get("/v1/cases", params={"limit": marker, "status": marker}, headers=api.auth("auditor")),
        api.client.get(f"/v1/cases/{marker}", headers=api.auth("auditor")),
        api.client.post(f"/v1/cases/{new_case_id()}/events", params={"wait": marker}, headers=api.auth("investigator")),
    ]
    for response in responses:
        body = problem(response, 400, "INVALID_REQUEST")
        assert marker not in response.text and body["errors"]
        assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])


def test_unknown_query_parameters_are_refused_not_ignored(api: Api) -> None:
    case_id = new_case_id()
    opened = api.ok("investigator", case_id, "CaseOpened", case_opened())
    auditor = api.auth("auditor")
    misspelt = api.client.get(f"/v1/cases/{case_id}", params={"asof": "2000-01-01T00:00:00Z"}, headers=auditor)
    body = problem(misspelt, 400, "INVALID_REQUEST")
    assert body["errors"] == [{"loc": ["query", "asof"], "msg": "unknown query parameter", "type": "extra_forbidden"}]
    marker = "Jane Caller 617-555-0100"
    for response in (
        api.client.get("/v1/log/checkpoint", params={marker: "1"}),
        api.client.get("/v1/log/envelopes", params={"after": "0", "keyless": "1"}, headers=auditor),
    ):
        body = problem(response, 400, "INVALID_REQUEST")
        assert marker not in response.text and body["errors"][0]["msg"] == "unknown query parameter"
    assert api.client.get(f"/v1/cases/{case_id}", params={"at_index": opened["leaf_index"]}, headers=auditor).status_code == 200
    assert api.client.get("/v1/log/envelopes", params={"after": "0", "limit": "5"}, headers=auditor).status_code == 200


def test_unknown_routes_and_methods_are_problems_with_allow(api: Api) -> None:
    problem(api.client.get("/v2/nothing"), 404, "ROUTE_NOT_FOUND")
    response = api.client.delete("/v1/keys")
    problem(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, POST"


def test_every_response_carries_a_request_id(api: Api) -> None:
    assert len(api.client.get("/healthz").headers["x-request-id"]) == 32
    mine = api.client.get("/healthz", headers={"X-Request-ID": "trace-0123456789"})
    assert mine.headers["x-request-id"] == "trace-0123456789"
    hostile = api.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"
    refused = api.client.get("/v1/cases")
    assert problem(refused, 401)["request_id"] == refused.headers["x-request-id"]


def test_an_internal_failure_is_a_500_problem_that_hides_the_exception(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("secret detail CANARY-500")

    monkeypatch.setattr(api.ledger, "case_view_json", boom)  # what a case read calls
    response = api.client.get(f"/v1/cases/{new_case_id()}", headers=api.auth("auditor"))
    body = problem(response, 500, "INTERNAL_ERROR")
    assert "CANARY-500" not in response.text and body["request_id"] == response.headers["x-request-id"]


def test_storage_failures_are_503_with_retry_after(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*_a: object, **_k: object) -> None:
        raise StorageError("database unavailable: OperationalError")

    monkeypatch.setattr(api.ledger, "list_cases", down)
    response = api.client.get("/v1/cases", headers=api.auth("auditor"))
    problem(response, 503, "STORAGE_UNAVAILABLE")
    assert response.headers["retry-after"] == "1"
