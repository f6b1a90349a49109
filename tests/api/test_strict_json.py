"""Every JSON answer of the API parses under the project's own strict parser
(``ledger.envelope.canonical.parse_strict``: UTF-8 without a byte-order mark, no duplicate keys, integers
within ±(2**53 - 1), no fractions, NaN or Infinity, no lone surrogates): every operation of the OpenAPI
document, called with every role's token and with none, against a ledger holding a realistic history,
answers and problems alike; on SQLite and PostgreSQL.

The operations are read from the OpenAPI document: a new one whose parameters this walk cannot fill
fails here until it is taught how (``PATH_VALUES``, ``QUERY_VALUES``, ``BODIES``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from domain.errors import MalformedInputError
from ledger.bootstrap import registry_body
from ledger.envelope.canonical import parse_strict
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.keys import raw_public_key
from ledger.envelope.signing import build_envelope
from ledger.store import Ledger
from tests.support.api import COUNSEL, Api, add_counsel, running_api
from tests.support.cases import (
    FOOTAGE_BYTES,
    FOOTAGE_SHA,
    REDACTED_BYTES,
    case_opened,
    footage_captured,
    hold_placed,
    new_case_id,
    report_received,
    run_cambridge_scenario,
)

#: every caller: a token of each role (two prosecutors of different authorities), and none
CALLERS = ("investigator", "supervisor", "prosecutor", "ag_prosecutor", "auditor", "admin", "counsel", None)
JSON_TYPES = ("application/json", "application/problem+json")
PERSON = {"name": "R. Reporter", "phone": "617-555-0100", "note": "héllo ✓ \u2028"}


@dataclass
class World:
    """A ledger with a history worth reading, and the values that fill every operation's parameters."""

    api: Api
    closed: str  # the Cambridge case: reported, held, lifted, redacted, released, referred, closed
    open: str  # stored footage under a hold, custody moves, a sealed reporter, a disclosure underway
    sealed_ref: str
    disclosure: dict[str, Any]  # the body of the SealedRecordDisclosed the walk posts
    seen: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def _world(api: Api) -> World:
    add_counsel(api)
    ledger = api.ledger
    sealed = api.client.post("/v1/sealed", content=json.dumps({"name": "CPD caller"}), headers=api.auth("investigator"))
    assert sealed.status_code == 201, sealed.text
    closed = new_case_id()
    run_cambridge_scenario(api.actors, closed, sealed.json())

    open_case = new_case_id()
    person = api.client.post("/v1/sealed", content=json.dumps(PERSON), headers=api.auth("supervisor"))
    ref = str(person.json()["sealed_ref"])
    for data in (FOOTAGE_BYTES, REDACTED_BYTES):
        stored = api.client.post("/v1/evidence", content=data, headers=api.auth("investigator"))
        assert stored.status_code == 201, stored.text
    api.ok("investigator", open_case, "CaseOpened", case_opened("CPD-2026-0002"))
    api.ok("investigator", open_case, "ReportReceived", report_received(person.json()))
    api.ok("investigator", open_case, "FootageCaptured", footage_captured(stored=True))
    api.ok("investigator", open_case, "FootageCaptured", footage_captured("ftg-2", sha=f"{7:064x}"))
    for frm, to in (("CPD Evidence Unit", "CPD Video Lab"), ("CPD Video Lab", "CPD Evidence Unit")):
        api.ok("investigator", open_case, "CustodyTransferred",
               {"footage_id": "ftg-1", "from_custodian": frm, "to_custodian": to, "purpose": "redaction ✓"})
    api.ok("investigator", open_case, "InvestigationHoldPlaced", hold_placed("hold-9", ["ftg-2"]))
    api.ok("investigator", open_case, "ReferralMade", {"referral_id": "ref-2", "authority": "massachusetts_ag",
                                                       "basis": "Civil rights review"})
    request = {"request_id": "dreq-1", "sealed_ref": ref, "purpose": "court order", "legal_basis": "Summons 17"}
    api.ok("investigator", open_case, "SealedDisclosureRequested", request)
    api.ok("counsel", open_case, "SealedDisclosureApproved", {"request_id": "dreq-1"})
    api.post("investigator", open_case, "FootageCaptured", footage_captured("ftg-3", sha=f"{8:064x}"), wait=True)
    for _ in range(3):  # reads to fill the access log, then its checkpoint
        api.client.get(f"/v1/cases/{open_case}", headers=api.auth("supervisor"))
    ledger.access_log.checkpoint()
    disclosed = {"request_id": "dreq-1", "sealed_ref": ref, "approvers": [COUNSEL]}
    assert ledger.latest_checkpoint() is not None and ledger.access_log.latest_checkpoint() is not None
    return World(api, closed, open_case, ref, disclosed)


@pytest.fixture
def world(ledger: Ledger) -> Iterator[World]:
    with running_api(ledger) as api:
        yield _world(api)


# -- filling in the operations --------------------------------------------------------------------


def _log_size(w: World, path: str) -> int:
    if path.startswith("/v1/access-log"):
        checkpoint = w.api.ledger.access_log.latest_checkpoint()
    else:
        checkpoint = w.api.ledger.latest_checkpoint()
    assert checkpoint is not None
    return int(checkpoint.size)


def _tile_paths(w: World) -> list[str]:
    """A tile and an entry bundle of the published tiles (the checkpointer writes them), and one not there."""
    from ledger.log import tiles

    assert w.api.runtime.checkpointer is not None
    w.api.runtime.checkpointer.publish_tiles()
    published = w.api.ledger.published_checkpoint()
    assert published is not None
    held = tiles.tiles_at(published.size)
    return [held[0].path.removeprefix("tile/"), held[-1].path.removeprefix("tile/"), "0/999"]


#: path parameter -> the values to try (every combination of them is called)
PATH_VALUES: dict[str, Callable[[World, str], list[str]]] = {
    "case_id": lambda w, _: [w.closed, w.open, new_case_id()],
    "footage_id": lambda w, _: ["ftg-1", "ftg-2", "no-such-footage"],
    "sha256": lambda w, _: [FOOTAGE_SHA, "0" * 64],
    "sealed_ref": lambda w, _: [w.sealed_ref],
    "size": lambda w, p: [str(_log_size(w, p)), "1"],
    "index": lambda w, _: ["0", "999999"],
    "path": lambda w, _: _tile_paths(w),  # GET /tiles/tile/{path}
}

#: required query parameter -> its value
QUERY_VALUES: dict[str, Callable[[World, str], str]] = {
    "case_id": lambda w, _: w.open,  # GET /v1/evidence/{sha256}: the case the file is read for
    "index": lambda w, _: "0",
    "first": lambda w, _: "1",
    "second": lambda w, p: str(_log_size(w, p)),
}

#: optional query parameters worth a call of their own: the answers they change
VARIANTS: dict[str, list[Callable[[World], dict[str, str]]]] = {
    "/v1/cases/{case_id}": [lambda w: {"at_index": "3"}, lambda w: {"as_of": "2026-02-05T17:00:00.100Z"}],
    "/v1/cases": [lambda w: {"limit": "1"}, lambda w: {"status": "closed"}],
    "/v1/public/releases": [lambda w: {"limit": "1"}],
    "/v1/log/envelopes": [lambda w: {"limit": "2", "after": "1"}],
    "/v1/log/checkpoints/{size}/timestamps": [lambda w: {"limit": "1", "after": "a"}],
    "/v1/access-log": [lambda w: {"case_id": w.open, "limit": "2"}],
    "/v1/cases/{case_id}/bundle": [lambda w: {"with_media": "true", "purpose": "prosecution review"}],
    "/v1/log/proof/inclusion": [lambda w: {"index": "0", "size": "1"}],
}


def _registry_envelope(w: World) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    ledger = w.api.ledger
    body = registry_body(raw_public_key(Ed25519PrivateKey.generate()), actor="Det. F. Ortiz", role="investigator",
                         authority=None, valid_from=ledger.clock())
    version, head = ledger.case_head(REGISTRY_CASE_ID)
    return build_envelope(origin=ledger.origin, case_id=REGISTRY_CASE_ID, event_type="KeyRegistered", body=body,
                          key=w.api.admin_key(), seq=version + 1, prev=head, occurred_at=ledger.clock())


def _case_event(w: World, who: str | None, url: str) -> bytes:
    case_id = url.split("/")[3]
    signer = who if who in w.api.actors.keys else "investigator"
    body = footage_captured(f"ftg-{who}-{len(w.seen)}", sha=f"{len(w.seen) + 100:064x}")
    return w.api.envelope(signer, case_id, "FootageCaptured", body)


#: (method, path) of every operation with a request body -> the body for a caller and a concrete url
BODIES: dict[tuple[str, str], Callable[[World, str | None, str], bytes]] = {
    ("post", "/v1/cases/{case_id}/events"): _case_event,
    ("post", "/v1/evidence"): lambda w, who, url: b"a clip " + (who or "none").encode(),
    ("post", "/v1/keys"): lambda w, who, url: _registry_envelope(w),
    ("post", "/v1/sealed"): lambda w, who, url: json.dumps(PERSON, ensure_ascii=False).encode(),
    ("post", "/v1/sealed/{sealed_ref}/disclosure"):  # signed now: the walk appends to the case before
        lambda w, who, url: w.api.envelope("investigator", w.open, "SealedRecordDisclosed", w.disclosure),
}

#: operations that give no caller a 2xx in this walk, and why
NO_SUCCESS: dict[tuple[str, str], str] = {}


def _urls(w: World, path: str) -> list[str]:
    urls = [path]
    for name in re.findall(r"\{(\w+)\}", path):
        assert name in PATH_VALUES, f"teach this test a value for path parameter {name!r} ({path})"
        values = PATH_VALUES[name](w, path)
        urls = [u.replace("{" + name + "}", v) for u in urls for v in values]
    return urls


def _calls(w: World, document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, str]]]:
    """(method, path template, url, query) for every operation and every filling of its parameters."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            query = {}
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter.get("required"):
                    name = parameter["name"]
                    assert name in QUERY_VALUES, f"teach this test a value for query parameter {name!r} ({path})"
                    query[name] = QUERY_VALUES[name](w, path)
            if "requestBody" in operation:
                assert (method, path) in BODIES, f"teach this test a request body for {method.upper()} {path}"
            for url in _urls(w, path):
                yield method, path, url, query
                for variant in VARIANTS.get(path, []) if method == "get" else []:
                    yield method, path, url, {**query, **variant(w)}


#: the answers that are not JSON: checkpoints, files, bundles, the public page, its CSV and Atom feed, the docs
NOT_JSON_TYPES = (
    "text/plain", "application/octet-stream", "application/zip", "text/html", "text/csv", "application/atom+xml",
    "text/javascript", "text/css", "image/png",
)


def _check(response: httpx.Response, what: str) -> bool:
    """Parse a JSON answer strictly; True when it was JSON."""
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    if kind not in JSON_TYPES:
        assert kind in NOT_JSON_TYPES, (what, kind)
        assert response.status_code < 400, (what, response.status_code, kind)  # every problem is JSON
        return False
    try:
        parse_strict(response.content)
    except MalformedInputError as exc:
        raise AssertionError(f"{what} answered JSON the strict parser refuses: {exc}") from None
    if kind == "application/problem+json":
        assert response.status_code >= 400, what
    return True


def test_every_answer_of_every_operation_for_every_caller_is_strict_json(world: World) -> None:
    api = world.api
    document = api.app.openapi()
    operations = {(m, p) for p, item in document["paths"].items() for m in item}
    assert not set(BODIES) - operations, "a body for an operation that no longer exists"
    successes: dict[tuple[str, str], int] = {}
    json_answers = 0
    for method, path, url, query in list(_calls(world, document)):
        for who in CALLERS:
            headers = api.auth(who) if who else {}
            body = BODIES[(method, path)](world, who, url) if (method, path) in BODIES else None
            response = api.client.request(method.upper(), url, params=query, content=body, headers=headers)
            what = f"{method.upper()} {url}?{query} as {who or 'the public'}"
            assert response.status_code < 500 or response.status_code == 503, (what, response.text)
            world.seen.setdefault((method, path), []).append(response.status_code)
            json_answers += _check(response, what)
            if response.status_code < 300:
                successes[(method, path)] = successes.get((method, path), 0) + 1
    assert set(world.seen) == operations
    missing = operations - set(successes) - set(NO_SUCCESS)
    assert not missing, f"operations no caller got a 2xx from: {sorted(missing)}"
    statuses = {status for seen in world.seen.values() for status in seen}
    assert {200, 201, 401, 403, 404, 422} <= statuses, sorted(statuses)
    assert json_answers > 400
    # beyond the document: unknown routes and methods, refused bodies and parameters answer problems too
    again = api.envelope("investigator", world.open, "SealedRecordDisclosed", world.disclosure)
    stale = api.envelope("investigator", world.open, "FootageCaptured", footage_captured("ftg-late"), seq=2)
    for method, url, content, status in (
        ("GET", "/v2/nothing", None, 404),
        ("DELETE", "/v1/keys", None, 405),
        ("POST", f"/v1/cases/{world.open}/events", b'{"a":1,"a":2}', 400),
        ("POST", f"/v1/cases/{world.open}/events", b"\xff\xfe", 400),
        ("POST", "/v1/sealed", b'{"n": 1.5}', 400),
        ("POST", "/v1/sealed", b'{"n": "' + b"x" * 70_000 + b'"}', 413),
        ("POST", f"/v1/sealed/{world.sealed_ref}/disclosure", again, 422),
        ("POST", f"/v1/cases/{world.open}/events", stale, 409),
        ("GET", "/v1/cases?limit=1e3", None, 400),
        ("GET", "/v1/log/proof/inclusion?index=5&size=2", None, 400),
        ("GET", "/v1/log/envelopes?start=0", None, 400),
    ):
        response = api.client.request(method, url, content=content, headers=api.auth("investigator"))
        assert response.status_code == status, (method, url, response.status_code, response.text[:200])
        assert _check(response, f"{method} {url}")


def test_the_case_read_sends_each_key_once(world: World) -> None:
    """The stored projection is served as bytes (no re-encoding): its keys must not repeat."""
    for who in ("investigator", "supervisor", "auditor", "prosecutor", "counsel"):
        response = world.api.client.get(f"/v1/cases/{world.closed}", headers=world.api.auth(who))
        if response.status_code == 200:
            view = parse_strict(response.content)
            assert view == world.api.ledger.case_view(world.closed) | {"case_id": world.closed}
            assert (view["case_id"], view["version"]) == (world.closed, 11) and view["head_sha256"]
