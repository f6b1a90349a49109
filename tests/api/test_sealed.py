"""Two-person disclosure and shredding over HTTP: requests and approvals are ordinary signed
envelopes, the disclosure is the one endpoint that returns personal data, a shredded record is 410."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ledger.envelope.dsse import parse_envelope
from ledger.store import Ledger
from tests.support.api import COUNSEL, Api, add_counsel, problem, running_api
from tests.support.cases import case_opened, new_case_id, report_received

PERSON = {"name": "R. Reporter", "phone": "555-0100"}


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        add_counsel(running)
        yield running


def _sealed_case(api: Api) -> tuple[str, str]:
    sealed = api.client.post("/v1/sealed", content=json.dumps(PERSON), headers=api.auth("investigator"))
    assert sealed.status_code == 201
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    api.ok("investigator", case_id, "ReportReceived", report_received(sealed.json()))
    return case_id, str(sealed.json()["sealed_ref"])


def test_a_disclosure_over_http(api: Api) -> None:
    case_id, ref = _sealed_case(api)
    body = {"request_id": "dreq-1", "sealed_ref": ref, "purpose": "court order", "legal_basis": "Summons 17"}
    api.ok("investigator", case_id, "SealedDisclosureRequested", body)
    problem(api.post("investigator", case_id, "SealedDisclosureApproved", {"request_id": "dreq-1"},
                     caller="supervisor"), 403, "SIGNER_NOT_CALLER")
    wrong = problem(api.post("investigator", case_id, "SealedDisclosureApproved", {"request_id": "dreq-1"}), 403,
                    "ROLE_NOT_ALLOWED")
    assert wrong["refs"] == {"role": "investigator", "event_type": "SealedDisclosureApproved"}
    api.ok("counsel", case_id, "SealedDisclosureApproved", {"request_id": "dreq-1"})
    disclosed = {"request_id": "dreq-1", "sealed_ref": ref, "approvers": [COUNSEL]}
    raw = api.envelope("investigator", case_id, "SealedRecordDisclosed", disclosed)
    url = f"/v1/sealed/{ref}/disclosure"
    problem(api.client.post(url, content=raw, headers=api.auth("auditor")), 403, "ROLE_NOT_ALLOWED")
    problem(api.client.post(url, content=raw, headers=api.auth("supervisor")), 403, "SIGNER_NOT_CALLER")
    problem(api.client.post("/v1/sealed/other-ref/disclosure", content=raw, headers=api.auth("investigator")),
            400, "BINDING_MISMATCH")
    response = api.client.post(url, content=raw, headers=api.auth("investigator"))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert answer["data"] == PERSON and answer["sealed_ref"] == ref and answer["receipt"]["case_id"] == case_id
    problem(api.client.post(url, content=raw, headers=api.auth("investigator")), 409, "DISCLOSURE_ALREADY_MADE")
    view = api.client.get(f"/v1/cases/{case_id}", headers=api.auth("counsel")).json()
    assert view["disclosures"][0]["disclosed_seq"] == 6  # after the recorded refusal (seq 4)
    # the refused approval by the wrong role is on record, signed by the service; nothing personal in the case
    types = [parse_envelope(e).statement.type for e in api.ledger.case_envelopes(case_id)]
    assert types.count("SealedDisclosureRefused") == 1
    assert all(b"555-0100" not in e for e in api.ledger.case_envelopes(case_id))


def test_a_refused_disclosure_is_a_problem_and_on_record(api: Api) -> None:
    case_id, ref = _sealed_case(api)
    body = {"request_id": "dreq-1", "sealed_ref": ref, "purpose": "court order", "legal_basis": "Summons 17"}
    api.ok("counsel", case_id, "SealedDisclosureRequested", body)
    problem(api.post("counsel", case_id, "SealedDisclosureApproved", {"request_id": "dreq-1"}), 422, "SAME_PERSON")
    raw = api.envelope("counsel", case_id, "SealedRecordDisclosed",
                       {"request_id": "dreq-1", "sealed_ref": ref, "approvers": ["nobody"]})
    answer = problem(api.client.post(f"/v1/sealed/{ref}/disclosure", content=raw, headers=api.auth("counsel")), 422,
                     "DISCLOSURE_NOT_APPROVED")
    assert "R. Reporter" not in json.dumps(answer)
    codes = [parse_envelope(e).statement.body.get("code") for e in api.ledger.case_envelopes(case_id)
             if parse_envelope(e).statement.type == "SealedDisclosureRefused"]
    assert codes == ["SAME_PERSON", "DISCLOSURE_NOT_APPROVED"]


def test_a_shredded_record_is_gone(api: Api) -> None:
    case_id, ref = _sealed_case(api)
    api.ok("supervisor", case_id, "SealedRecordShredded", {"sealed_ref": ref, "reason": "retention"})
    assert not api.ledger.keystore().has(ref) and not api.ledger.sealed_store().row_exists(ref)
    body = {"request_id": "dreq-1", "sealed_ref": ref, "purpose": "court order", "legal_basis": "Summons 17"}
    problem(api.post("investigator", case_id, "SealedDisclosureRequested", body), 410, "SHREDDED")
    raw = api.envelope("investigator", case_id, "SealedRecordDisclosed",
                       {"request_id": "dreq-1", "sealed_ref": ref, "approvers": [COUNSEL]})
    problem(api.client.post(f"/v1/sealed/{ref}/disclosure", content=raw, headers=api.auth("investigator")), 422,
            "UNKNOWN_DISCLOSURE_REQUEST")
    ready = api.client.get("/readyz").json()
    tiles = ready.pop("tiles")  # how far the tiles are published depends on the checkpointer's timing
    assert tiles["error"] is None and tiles["conflicts"] == 0 and tiles["size"] >= 0
    assert ready == {"status": "ready", "admin_key_on_server": True, "keystore_in_data_dir": True,
                     "profile": "standard", "min_witnesses": 0, "witnessed_size": 0}


def _approved_disclosure(api: Api) -> tuple[str, str, bytes]:
    case_id, ref = _sealed_case(api)
    body = {"request_id": "dreq-1", "sealed_ref": ref, "purpose": "court order", "legal_basis": "Summons 17"}
    api.ok("investigator", case_id, "SealedDisclosureRequested", body)
    api.ok("counsel", case_id, "SealedDisclosureApproved", {"request_id": "dreq-1"})
    raw = api.envelope("investigator", case_id, "SealedRecordDisclosed",
                       {"request_id": "dreq-1", "sealed_ref": ref, "approvers": [COUNSEL]})
    return case_id, ref, raw


def _sealed_reads(api: Api, case_id: str) -> list[dict[str, object]]:
    listed = api.client.get("/v1/access-log", params={"case_id": case_id}, headers=api.auth("auditor"))
    assert listed.status_code == 200, listed.text
    return [item["entry"] for item in listed.json()["items"] if item["entry"]["action"] == "sealed.read"]


def test_every_disclosure_attempt_is_in_the_access_log(api: Api) -> None:
    case_id, ref, raw = _approved_disclosure(api)
    url = f"/v1/sealed/{ref}/disclosure"
    problem(api.client.post(url, content=raw, headers=api.auth("auditor")), 403, "ROLE_NOT_ALLOWED")
    assert api.client.post(url, content=raw, headers=api.auth("investigator")).status_code == 200
    problem(api.client.post(url, content=raw, headers=api.auth("investigator")), 409, "DISCLOSURE_ALREADY_MADE")
    entries = _sealed_reads(api, case_id)
    assert [(e["role"], e["outcome"], e["code"], e["item"]) for e in entries] == [
        ("investigator", "allowed", None, ref),
        ("investigator", "denied", "DISCLOSURE_ALREADY_MADE", ref),
    ]
    everything = api.client.get("/v1/access-log", headers=api.auth("auditor")).text
    assert "R. Reporter" not in everything and "555-0100" not in everything
    # the auditor's refusal is recorded by the dependency before the case is known (no case id)
    assert '"code":"ROLE_NOT_ALLOWED"' in everything.replace(" ", "")


def test_a_disclosure_whose_access_record_fails_returns_no_data(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.storage.sql import StorageError

    case_id, ref, raw = _approved_disclosure(api)

    def failing(records: object) -> list[int]:
        raise StorageError("database unavailable: OperationalError")

    monkeypatch.setattr(api.ledger.access_log, "append", failing)
    response = api.client.post(f"/v1/sealed/{ref}/disclosure", content=raw, headers=api.auth("investigator"))
    problem(response, 503, "ACCESS_LOG_UNAVAILABLE")
    assert "R. Reporter" not in response.text and "555-0100" not in response.text
    # the signed disclosure is in the case (documented): the data was not handed over, a new request is needed
    last = parse_envelope(api.ledger.case_envelopes(case_id)[-1]).statement.type
    assert last == "SealedRecordDisclosed"
