"""Every list endpoint answers one shape, ``{"items": [...], "next": <cursor or null>}``, takes ``after`` and
``limit``, and refuses a bad value with a problem; on SQLite and PostgreSQL.

The set of list endpoints is read from the OpenAPI document: a new operation answering a bare JSON
array, or an ``items`` without a ``next``, fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledger.store import Ledger
from tests.support.api import Api, problem, running_api
from tests.support.cases import case_opened, footage_captured, new_case_id

#: every list endpoint and the name of the query parameter that takes its cursor
LISTS = {
    "/v1/cases": "after",
    "/v1/cases/{case_id}/events": "after",
    "/v1/cases/{case_id}/timeline": "after",
    "/v1/cases/{case_id}/footage/{footage_id}/custody": "after",
    "/v1/log/envelopes": "after",
    "/v1/log/checkpoints/{size}/timestamps": "after",
    "/v1/public/releases": "after",
    "/v1/access-log": "after",
}


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
    return schema


def test_every_list_endpoint_in_the_openapi_document_is_paginated(api: Api) -> None:
    document = api.app.openapi()
    lists = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation["responses"].get("200", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            schema = _resolve(document, content["schema"])
            assert schema.get("type") != "array", f"{method.upper()} {path} answers a bare array"
            properties = schema.get("properties", {})
            if "items" in properties:
                assert set(properties) == {"items", "next"}, (path, sorted(properties))
                assert _resolve(document, properties["items"]).get("type") == "array", path
                names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
                assert {"limit", LISTS.get(path, "after")} <= names, (path, sorted(names))
                limit = next(p for p in operation["parameters"] if p["name"] == "limit")["schema"]
                assert limit["minimum"] == 1 and limit["maximum"] == 1000, path
                lists[path] = method
    assert lists == dict.fromkeys(LISTS, "get")


def _walk(api: Api, path: str, who: str | None, limit: int, cursor: str = "after") -> list[Any]:
    headers = api.auth(who) if who else {}
    items: list[Any] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(1000):
        response = api.client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next"} and len(page["items"]) <= limit
        items += page["items"]
        if page["next"] is None:
            return items
        assert page["items"], "a page with a next has items"
        params = {"limit": limit, cursor: page["next"]}
    raise AssertionError("pages never end")


def _release(api: Api, case_id: str, footage_id: str, n: int) -> None:
    sha = f"{n:064x}"
    api.ok("investigator", case_id, "FootageCaptured", footage_captured(footage_id, sha=sha))
    api.ok("supervisor", case_id, "FootageReleased", {
        "footage_id": footage_id, "sha256": sha, "basis": "executive_order", "channel": "city website", "url": None,
    })


def test_public_releases_page_by_page(api: Api) -> None:
    for c in range(2):
        case_id = new_case_id()
        api.ok("investigator", case_id, "CaseOpened", case_opened(f"CPD-2026-010{c}"))
        for n in range(3):
            _release(api, case_id, f"ftg-{n}", 10 * c + n)
    everything = api.ledger.public_releases()
    assert len(everything) == 6
    first = api.client.get("/v1/public/releases").json()
    assert first == {"items": everything, "next": None}
    for limit in (1, 2, 4):
        assert _walk(api, "/v1/public/releases", None, limit) == everything
    # a cursor stays put when a later release is recorded
    page = api.client.get("/v1/public/releases", params={"limit": 3}).json()
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened("CPD-2026-0199"))
    _release(api, case_id, "ftg-late", 99)
    rest = api.client.get("/v1/public/releases", params={"limit": 1000, "after": page["next"]}).json()
    assert rest == {"items": api.ledger.public_releases()[3:], "next": None} and len(rest["items"]) == 4


def test_the_access_log_takes_after_and_its_deprecated_name_cursor(api: Api) -> None:
    for _ in range(3):
        api.client.get("/v1/cases", headers=api.auth("investigator"))
    auditor = api.auth("auditor")
    first = api.client.get("/v1/access-log", params={"limit": 1}, headers=auditor).json()
    by_after = api.client.get("/v1/access-log", params={"limit": 1, "after": first["next"]}, headers=auditor).json()
    old = api.client.get("/v1/access-log", params={"limit": 1, "cursor": first["next"]}, headers=auditor)
    assert by_after == old.json() and by_after["items"][0]["leaf_index"] == first["next"] + 1
    assert old.headers["deprecation"] == "true"
    assert "deprecation" not in api.client.get("/v1/access-log", headers=auditor).headers
    operation = api.app.openapi()["paths"]["/v1/access-log"]["get"]
    assert {p["name"]: p.get("deprecated", False) for p in operation["parameters"]}["cursor"] is True


def test_the_replay_feed_page_by_page(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    for n in range(3):
        api.ok("investigator", case_id, "FootageCaptured", footage_captured(f"ftg-{n}", sha=f"{n:064x}"))
    items = _walk(api, "/v1/log/envelopes", "auditor", 2)
    assert [i["leaf_index"] for i in items] == list(range(api.ledger.log_size()))
    assert [(i["case_id"], i["seq"]) for i in items] == [(e.case_id, e.seq) for e in api.ledger.entries(0, 1000)]
    one = api.client.get("/v1/log/envelopes", params={"after": items[-2]["leaf_index"]}, headers=api.auth("auditor"))
    assert one.json() == {"items": items[-1:], "next": None}


def test_every_list_walks_to_its_end(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.ok("investigator", case_id, "FootageCaptured", footage_captured())
    for n in range(3):
        api.ok("investigator", case_id, "CustodyTransferred", {
            "footage_id": "ftg-1", "from_custodian": "CPD Evidence Unit" if n % 2 == 0 else "CPD Video Lab",
            "to_custodian": "CPD Video Lab" if n % 2 == 0 else "CPD Evidence Unit", "purpose": "review",
        })
    for n in range(3):
        api.ok("investigator", new_case_id(), "CaseOpened", case_opened(f"CPD-2026-02{n:02d}"))
    _release(api, case_id, "ftg-9", 9)
    for path, who in {
        "/v1/cases": "supervisor",
        f"/v1/cases/{case_id}/events": "supervisor",
        f"/v1/cases/{case_id}/timeline": "supervisor",
        f"/v1/cases/{case_id}/footage/ftg-1/custody": "supervisor",
        "/v1/log/envelopes": "auditor",
        "/v1/public/releases": None,
        "/v1/access-log": "auditor",
    }.items():
        whole = _walk(api, path, who, 1000)
        assert len(whole) >= 1, path
        if path != "/v1/access-log":  # reading the access log adds to it
            assert _walk(api, path, who, 1) == whole, path
        else:  # each page read is one more entry: follow five pages
            params: dict[str, Any] = {"limit": 1}
            for expected in whole[:5]:
                page = api.client.get(path, params=params, headers=api.auth(who)).json()
                assert page["items"] == [expected] and page["next"] == expected["leaf_index"]
                params = {"limit": 1, "after": page["next"]}


@pytest.mark.parametrize(
    ("path", "who", "params", "code"),
    [
        ("/v1/public/releases", None, {"limit": "0"}, "INVALID_REQUEST"),
        ("/v1/public/releases", None, {"limit": "1001"}, "INVALID_REQUEST"),
        ("/v1/public/releases", None, {"limit": "ten"}, "INVALID_REQUEST"),
        ("/v1/public/releases", None, {"after": "Jane Caller 617-555-0100"}, "INVALID_REQUEST"),
        ("/v1/public/releases", None, {"after": f"2026-13-40T10:00:00Z_{1:064x}_1"}, "BAD_CURSOR"),
        ("/v1/log/envelopes", "auditor", {"after": "-1"}, "INVALID_REQUEST"),
        ("/v1/log/envelopes", "auditor", {"after": str(2**53 + 1)}, "INVALID_REQUEST"),
        ("/v1/log/envelopes", "auditor", {"limit": "1001"}, "INVALID_REQUEST"),
        ("/v1/log/envelopes", "auditor", {"start": "0"}, "INVALID_REQUEST"),  # the old parameter
        ("/v1/access-log", "auditor", {"after": "0", "cursor": "0"}, "BAD_ARGUMENT"),
        ("/v1/access-log", "auditor", {"after": "x"}, "INVALID_REQUEST"),
    ],
)
def test_bad_paging_values_are_problems(api: Api, path: str, who: str | None, params: dict[str, str],
                                        code: str) -> None:
    response = api.client.get(path, params=params, headers=api.auth(who) if who else {})
    problem(response, 400, code)
    assert "Jane" not in response.text and "617-555" not in response.text
