"""PII canary: a unique marker in every personal field never shows up in a response, error or log line.

The marker goes into narratives, locations and the reporter's sealed data (name, phone, address),
through accepted events, refused events, malformed bodies, bad parameters and oversized bodies.
Then every read endpoint is called as every role. The signed envelopes themselves do hold the
narrative (it is evidence): they are served base64-encoded to authenticated roles only, which the
test checks too, so the canary can never appear in plain text anywhere.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledger.store import Ledger
from tests.support.api import Api, captured_logs, running_api
from tests.support.cases import (
    case_opened,
    footage_captured,
    incident_documented,
    new_case_id,
    referral_made,
    report_received,
)

CANARY = f"CANARY{uuid.uuid4().hex}"
ENVELOPE_ROUTES = ("/events", "/v1/log/envelopes")


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    with captured_logs() as buffer:
        yield buffer


@pytest.fixture
def api(ledger: Ledger, log_buffer: io.StringIO) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def _personal(sealed: dict[str, str] | None) -> dict[str, dict[str, Any]]:
    report = report_received(sealed)
    report.update(narrative=f"Caller {CANARY} saw agents.", location=f"{CANARY} Street, Cambridge")
    incident = incident_documented()
    incident.update(narrative=f"Witness {CANARY} described it.", location=f"Near {CANARY} Ave")
    return {"ReportReceived": report, "IncidentDocumented": incident}


def _write_everything(api: Api, responses: list[httpx.Response]) -> str:
    case_id = new_case_id()
    investigator = api.auth("investigator")
    reporter = {"name": f"{CANARY} Reporter", "phone": f"+1 617 {CANARY}", "address": f"1 {CANARY} Way"}
    sealed = api.client.post("/v1/sealed", content=json.dumps(reporter), headers=investigator)
    assert sealed.status_code == 201
    responses.append(sealed)
    personal = _personal(sealed.json())
    responses.append(api.post("investigator", case_id, "ReportReceived", personal["ReportReceived"]))  # 422
    assert responses[-1].status_code == 422
    responses.append(api.post("investigator", case_id, "CaseOpened", case_opened()))
    for event_type, body in personal.items():
        responses.append(api.post("investigator", case_id, event_type, body))
        assert responses[-1].status_code == 201, responses[-1].text
    responses.append(api.post("investigator", case_id, "ReportReceived", personal["ReportReceived"]))  # 409
    responses.append(api.post("supervisor", case_id, "IncidentDocumented", personal["IncidentDocumented"],
                              caller="investigator"))  # 403
    responses.append(api.post_raw(new_case_id(), api.envelope(
        "investigator", case_id, "IncidentDocumented", personal["IncidentDocumented"]), "investigator"))  # 400
    api.ok("investigator", case_id, "FootageCaptured", footage_captured())
    api.ok("investigator", case_id, "ReferralMade", referral_made())
    hostile = [
        ("/v1/sealed", f'{{"name":"{CANARY}","name":"x"}}'.encode()),
        ("/v1/sealed", f'{{"name":"{CANARY}","n":NaN}}'.encode()),
        ("/v1/sealed", json.dumps({"name": CANARY, "pad": "x" * (1024 * 1024)}).encode()),
        (f"/v1/cases/{case_id}/events", json.dumps({"narrative": CANARY}).encode()),
        (f"/v1/cases/{case_id}/events", f'{{"payload":"{CANARY}","payload":"x"}}'.encode()),
    ]
    for path, body in hostile:
        responses.append(api.client.post(path, content=body, headers=investigator))
        assert responses[-1].status_code in (400, 413), responses[-1].text
    responses.append(api.client.get("/v1/cases", params={"status": CANARY, "limit": CANARY}, headers=investigator))
    responses.append(api.client.get(f"/v1/cases/{CANARY}", headers=investigator))
    return case_id


def _read_everything(api: Api, case_id: str, responses: list[httpx.Response]) -> None:
    for who in ("investigator", "supervisor", "auditor", "prosecutor", "ag_prosecutor", "admin"):
        headers = api.auth(who)
        for path in ("/v1/cases", f"/v1/cases/{case_id}", f"/v1/cases/{case_id}/events",
                     f"/v1/cases/{case_id}/timeline", "/v1/keys", "/v1/log/envelopes"):
            responses.append(api.client.get(path, headers=headers))
    size = api.ledger.log_size()
    public = ["/v1/public/releases", "/v1/public/releases.csv", "/v1/public/releases.atom", "/public",
              "/v1/log/checkpoint", "/v1/log/key", "/metrics", "/healthz", "/readyz",
              f"/v1/log/proof/inclusion?index=0&size={size}", f"/v1/log/proof/consistency?first=1&second={size}"]
    public += [f"/v1/log/entries/{i}" for i in range(size)]
    responses += [api.client.get(path) for path in public]


def _payloads(response: httpx.Response) -> list[str]:
    """Decoded statements inside any envelopes a response carries."""
    data = response.json()
    items = data["items"] if isinstance(data, dict) else data
    return [base64.b64decode(json.loads(item["envelope"])["payload"]).decode() for item in items]


def test_the_pii_canary_never_leaks(api: Api, log_buffer: io.StringIO) -> None:
    responses: list[httpx.Response] = []
    case_id = _write_everything(api, responses)
    _read_everything(api, case_id, responses)
    assert len(responses) > 60
    for response in responses:
        assert CANARY not in response.text, (response.request.url, response.status_code)
        assert CANARY not in str(response.headers)
    stored = [p for r in responses if r.request.url.path.endswith(ENVELOPE_ROUTES) and r.status_code == 200
              for p in _payloads(r)]
    assert any(CANARY in p for p in stored), "positive control: the evidence itself holds the narrative"
    assert all(r.request.headers.get("authorization") for r in responses
               if r.request.url.path.endswith(ENVELOPE_ROUTES) and r.status_code == 200)
    logs = log_buffer.getvalue()
    assert logs.count('"event": "request"') >= len(responses)
    assert CANARY not in logs
    for line in logs.splitlines():
        if line.startswith("{"):
            json.loads(line)  # every structured line is one JSON object
