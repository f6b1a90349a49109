"""The Cambridge scenario end to end over HTTP, on SQLite and PostgreSQL, plus receipts and proofs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ledger.log import merkle, note
from ledger.log.proof_json import parse_consistency_proof, parse_inclusion_proof
from ledger.store import Ledger
from tests.support.api import Api, problem, running_api
from tests.support.cases import (
    REDACTED_SHA,
    case_opened,
    derivative_created,
    footage_captured,
    footage_released,
    hold_placed,
    incident_documented,
    new_case_id,
    referral_made,
    report_received,
)


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def test_cambridge_scenario_over_http(api: Api) -> None:
    case_id = new_case_id()
    sealed = api.client.post(
        "/v1/sealed", content=json.dumps({"name": "R. Reporter", "phone": "555-0100"}), headers=api.auth("investigator")
    )
    assert sealed.status_code == 201 and set(sealed.json()) == {"sealed_ref", "commitment"}
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    problem(api.client.get(f"/v1/cases/{case_id}", headers=api.auth("prosecutor")), 404, "CASE_NOT_FOUND")
    for event_type, body in [
        ("ReportReceived", report_received(sealed.json())),
        ("IncidentDocumented", incident_documented()),
        ("FootageCaptured", footage_captured()),
        ("InvestigationHoldPlaced", hold_placed()),
    ]:
        api.ok("investigator", case_id, event_type, body)
    refused = problem(api.post("supervisor", case_id, "FootageReleased", footage_released(False)), 422)
    assert refused["code"] == "RELEASE_UNDER_HOLD" and refused["refs"]["hold_id"] == "hold-1"
    assert refused["type"] == "urn:evidence-ledger:problem:release-under-hold"
    assert "lift it first with an InvestigationHoldLifted event (only a key of role 'supervisor'" in refused["detail"]
    not_opened = problem(api.post("investigator", new_case_id(), "ReferralMade", referral_made()), 422)
    assert not_opened["code"] == "CASE_NOT_OPENED" and "has no events yet (it does not exist)" in not_opened["detail"]
    assert "POST /v1/cases/" in not_opened["detail"] and "GET /v1/cases" in not_opened["detail"]
    api.ok("supervisor", case_id, "InvestigationHoldLifted", {"hold_id": "hold-1", "reason": "DA cleared"})
    api.ok("investigator", case_id, "FootageDerivativeCreated", derivative_created())
    api.ok("supervisor", case_id, "FootageReleased", footage_released())
    api.ok("investigator", case_id, "ReferralMade", referral_made())
    assert api.client.get(f"/v1/cases/{case_id}", headers=api.auth("prosecutor")).status_code == 200
    problem(api.client.get(f"/v1/cases/{case_id}", headers=api.auth("ag_prosecutor")), 404, "CASE_NOT_FOUND")
    api.ok("prosecutor", case_id, "ReferralAcknowledged", {"referral_id": "ref-1", "note": "Received"})
    api.ok("supervisor", case_id, "CaseClosed", {"disposition": "referred"})

    view = api.client.get(f"/v1/cases/{case_id}", headers=api.auth("auditor")).json()
    assert view["status"] == "closed" and view["version"] == 11 and view["releases"][0]["footage_id"] == "ftg-1"
    releases = api.client.get("/v1/public/releases").json()
    assert releases["next"] is None
    assert releases["items"] == [
        {
            "sha256": REDACTED_SHA,
            "released_at": view["releases"][0]["released_at"],
            "basis": "executive_order",
            "channel": "city website",
            "url": "https://www.cambridgema.gov/police/releases/ftg-1",
        }
    ]
    timeline = api.client.get(f"/v1/cases/{case_id}/timeline", headers=api.auth("auditor")).json()
    assert [e["seq"] for e in timeline["items"]] == list(range(1, 12)) and timeline["next"] is None
    events = api.client.get(f"/v1/cases/{case_id}/events", params={"limit": 5}, headers=api.auth("supervisor")).json()
    assert [e["envelope"].encode() for e in events["items"]] == api.ledger.case_envelopes(case_id)[:5]
    assert events["next"] == 5


def test_version_conflict_is_409_and_a_resubmission_is_an_idempotent_200(api: Api) -> None:
    case_id = new_case_id()
    raw = api.envelope("investigator", case_id, "CaseOpened", case_opened())
    first = api.post_raw(case_id, raw, "investigator")
    assert first.status_code == 201 and first.json()["duplicate"] is False
    size = api.ledger.log_size()
    again = api.post_raw(case_id, raw, "investigator")
    assert again.status_code == 200 and again.json() == {**first.json(), "duplicate": True}
    assert api.ledger.log_size() == size
    stale = api.post("investigator", case_id, "FootageCaptured", footage_captured(), seq=1, prev=None)
    body = problem(stale, 409, "SEQ_CONFLICT")
    assert body["refs"]["expected_seq"] == 2
    problem(api.post("investigator", case_id, "FootageCaptured", footage_captured(), prev="0" * 64), 409, "PREV_MISMATCH")
    assert api.ledger.log_size() == size


def test_caller_one_actor_with_the_key_of_another_is_403_and_writes_nothing(api: Api) -> None:
    case_id = new_case_id()
    size = api.ledger.log_size()
    refused = problem(api.post("supervisor", case_id, "CaseOpened", case_opened(), caller="investigator"), 403)
    assert refused["code"] == "SIGNER_NOT_CALLER" and refused["refs"]["key_id"] == api.actors.key_id("supervisor")
    assert api.ledger.log_size() == size and api.ledger.case_head(case_id) == (0, None)


def test_roles_the_key_registry_refuses_are_403(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    problem(api.post("investigator", case_id, "CaseClosed", {"disposition": "x"}), 403, "ROLE_NOT_ALLOWED")
    problem(api.post("auditor", case_id, "CaseClosed", {"disposition": "x"}), 403, "ROLE_NOT_ALLOWED")


def test_prosecutor_may_not_append_to_a_case_not_referred_to_them(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    response = api.post("prosecutor", case_id, "ReferralAcknowledged", {"referral_id": "ref-1", "note": "x"})
    problem(response, 404, "CASE_NOT_FOUND")


def _verifier(api: Api) -> note.VerifierKey:
    text = api.client.get("/v1/log/key")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    return note.parse_verifier_key(text.text.strip())


def test_wait_returns_a_checkpoint_and_an_inclusion_proof_that_verify(api: Api) -> None:
    case_id = new_case_id()
    response = api.post("investigator", case_id, "CaseOpened", case_opened(), wait=True)
    assert response.status_code == 201, response.text
    receipt = response.json()
    verified = note.verify_checkpoint(receipt["checkpoint"].encode(), _verifier(api))
    size = verified.checkpoint.size
    assert size > receipt["leaf_index"]
    index, path = parse_inclusion_proof(json.dumps(receipt["inclusion_proof"]).encode(), tree_size=size)
    leaf = api.client.get(f"/v1/log/entries/{index}")
    assert leaf.headers["content-type"] == "application/octet-stream"
    assert merkle.leaf_hash(leaf.content).hex() == receipt["leaf_hash"]
    merkle.verify_inclusion(merkle.leaf_hash(leaf.content), index, size, path, verified.checkpoint.root)


def test_public_log_endpoints_prove_consistency_between_checkpoints(api: Api) -> None:
    vkey = _verifier(api)
    old = note.verify_checkpoint(api.client.get("/v1/log/checkpoint").content, vkey).checkpoint
    case_id = new_case_id()
    api.post("investigator", case_id, "CaseOpened", case_opened(), wait=True)
    new = note.verify_checkpoint(api.client.get("/v1/log/checkpoint").content, vkey).checkpoint
    assert new.size > old.size
    by_size = api.client.get(f"/v1/log/checkpoints/{old.size}")
    assert note.verify_checkpoint(by_size.content, vkey).checkpoint.root == old.root
    proof = api.client.get("/v1/log/proof/consistency", params={"first": old.size, "second": new.size})
    path = parse_consistency_proof(proof.content, first=old.size, second=new.size)
    merkle.verify_consistency(old.size, new.size, path, old.root, new.root)
    inclusion = api.client.get("/v1/log/proof/inclusion", params={"index": 0, "size": new.size})
    assert inclusion.json()["tree_size"] == new.size
    problem(api.client.get("/v1/log/proof/inclusion", params={"index": 5, "size": 5}), 400, "BAD_ARGUMENT")
    problem(api.client.get("/v1/log/checkpoints/999999"), 404, "NO_CHECKPOINT")
    problem(api.client.get("/v1/log/entries/999999"), 404, "NO_ENTRY")


def test_replay_endpoint_returns_envelopes_in_log_order(api: Api) -> None:
    case_id = new_case_id()
    receipt = api.ok("investigator", case_id, "CaseOpened", case_opened())
    problem(api.client.get("/v1/log/envelopes", headers=api.auth("investigator")), 403, "ROLE_NOT_ALLOWED")
    page = api.client.get("/v1/log/envelopes", headers=api.auth("auditor")).json()
    entries = page["items"]
    assert page["next"] is None
    assert [e["leaf_index"] for e in entries] == list(range(len(entries)))
    last = entries[receipt["leaf_index"]]
    assert (last["case_id"], last["seq"]) == (case_id, 1)
    assert last["envelope"].encode() == api.ledger.case_envelopes(case_id)[0]


def test_admin_registers_a_key_over_http_and_it_can_sign_at_once(api: Api) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.bootstrap import registry_body
    from ledger.client import RemoteLedger
    from ledger.envelope.dsse import REGISTRY_CASE_ID
    from ledger.envelope.keys import raw_public_key

    new_key = Ed25519PrivateKey.generate()
    body = registry_body(raw_public_key(new_key), actor="Det. F. Ortiz", role="investigator", authority=None,
                         valid_from=api.ledger.clock())
    admin = RemoteLedger(client=api.client, token=api.token("admin"))
    receipt = admin.post_envelope(REGISTRY_CASE_ID, _registry_envelope(api, body))
    assert receipt["case_id"] == REGISTRY_CASE_ID
    keys = api.client.get("/v1/keys", headers=api.auth("auditor")).json()
    assert any(k["actor"] == "Det. F. Ortiz" for k in keys["keys"]) and keys["head_sha256"]
    problem(api.client.post("/v1/keys", content=b"{}", headers=api.auth("supervisor")), 403, "ROLE_NOT_ALLOWED")
    api.actors.keys["ortiz"] = new_key
    token = api.issue("investigator", actor="Det. F. Ortiz")
    case_id = new_case_id()
    raw = api.envelope("ortiz", case_id, "CaseOpened", case_opened())
    response = api.client.post(f"/v1/cases/{case_id}/events", content=raw, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text


def _registry_envelope(api: Api, body: dict[str, object]) -> bytes:
    from ledger.envelope.dsse import REGISTRY_CASE_ID
    from ledger.envelope.signing import build_envelope

    version, head = api.ledger.case_head(REGISTRY_CASE_ID)
    return build_envelope(
        origin=api.ledger.origin, case_id=REGISTRY_CASE_ID, event_type="KeyRegistered", body=body,
        key=api.admin_key(), seq=version + 1, prev=head, occurred_at=api.ledger.clock(),
    )


def test_client_appends_through_the_api(api: Api) -> None:
    from domain.errors import AuthorizationError, DomainError
    from ledger.client import RemoteLedger

    case_id = new_case_id()
    with RemoteLedger(client=api.client, token=api.token("investigator"), clock=api.ledger.clock) as remote:
        assert remote.origin() == api.ledger.origin
        first = remote.append(case_id, "CaseOpened", case_opened(), api.actors.keys["investigator"])
        second = remote.append(case_id, "FootageCaptured", footage_captured(), api.actors.keys["investigator"])
        assert (first["seq"], second["seq"]) == (1, 2)
        with pytest.raises(DomainError) as refused:
            remote.append(case_id, "FootageCaptured", footage_captured(), api.actors.keys["investigator"])
        assert refused.value.code == "DUPLICATE_ID" and refused.value.refs == {"footage_id": "ftg-1"}
        with pytest.raises(AuthorizationError) as forbidden:
            remote.append(case_id, "CaseClosed", {"disposition": "x"}, api.actors.keys["supervisor"])
        assert forbidden.value.code == "SIGNER_NOT_CALLER"
