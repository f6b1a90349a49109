"""The Cambridge scenario end to end, release_status transitions and the projections."""

from __future__ import annotations

import json

from domain.case import CaseState, replay
from domain.context import DomainConfig
from domain.events import Event
from domain.projections import case_view, public_release_entries, release_status, timeline_entry
from tests.support.domain import DERIVATIVE_SHA, FOOTAGE_SHA, OTHER_SHA, Fold, ctx, ev, key

PERSONAL = ("Caller saw", "smashed", "Central Square", "12" * 32, "Bystander faces")


def statuses(state: CaseState) -> dict[str, str]:
    return {f.footage_id: release_status(state, f) for f in state.footage}


def test_cambridge_scenario() -> None:
    fold = Fold()  # seq 0: CaseOpened by a supervisor
    fold.add("ReportReceived", role="investigator")  # 911 call, sealed reporter
    state = fold.add("IncidentDocumented", role="investigator")
    officials = state.incidents[0].federal_officials[0]
    assert (officials.face_covered, officials.body_camera_worn) == (True, False)
    state = fold.add("FootageCaptured", role="investigator")
    assert statuses(state) == {"fp-1": "eligible"}
    state = fold.add("InvestigationHoldPlaced", role="investigator")
    assert statuses(state) == {"fp-1": "held"}
    refused = fold.refused("FootageReleased")
    assert (refused.code, refused.refs["hold_id"], refused.refs["footage_id"]) == (
        "RELEASE_UNDER_HOLD",
        "hold-1",
        "fp-1",
    )
    state = fold.add("InvestigationHoldLifted")
    assert statuses(state) == {"fp-1": "eligible"}
    fold.add("CustodyTransferred", role="investigator")
    fold.add("FootageDerivativeCreated", role="investigator")
    state = fold.add(
        "FootageReleased", derivative_id="dv-1", sha256=DERIVATIVE_SHA, url="https://cambridgema.gov/r/1"
    )
    assert statuses(state) == {"fp-1": "released"}
    fold.add("ReferralMade", role="investigator")
    state = fold.add("ReferralAcknowledged", role="prosecutor", ctx_authority="middlesex_da")
    assert state.referrals[0].acknowledgement is not None
    state = fold.add("CaseClosed")
    assert state.status == "closed"
    assert fold.refused("FootageCaptured", footage_id="fp-2").code == "CASE_CLOSED"
    state = fold.add("CaseReopened")
    assert state.status == "open" and state.version == fold.seq - 1

    view = case_view(state)
    assert view["status"] == "open" and view["footage"][0]["release_status"] == "released"
    assert view["footage"][0]["custodian"] == "CPD Video Lab"
    assert view["footage"][0]["custody"] == {
        "steps": 2, "href": f"/v1/cases/{state.case_id}/footage/fp-1/custody"
    }
    assert [s["to_custodian"] for _, s in fold.custody] == ["CPD Evidence Unit", "CPD Video Lab"]
    assert view["footage"][0]["derivatives"][0]["derivative_id"] == "dv-1"
    assert view["active_holds"] == [] and view["releases"][0]["derivative_id"] == "dv-1"
    assert view["reports"][0]["reporter_sealed"] is True
    dumped = json.dumps(view)
    assert not any(p in dumped for p in PERSONAL)

    public = public_release_entries(state)
    assert public == [
        {
            "sha256": DERIVATIVE_SHA,
            "released_at": state.releases[0].at,
            "basis": "executive_order",
            "channel": state.releases[0].channel,
            "url": "https://cambridgema.gov/r/1",
        }
    ]
    assert "custodian" not in json.dumps(public) and "CPD Evidence Unit" not in json.dumps(public)


def test_release_status_held_eligible_released_and_not_covered() -> None:
    fold = Fold()
    fold.add("FootageCaptured")
    fold.add("FootageCaptured", footage_id="fp-2", sha256=OTHER_SHA, depicts=["other"])
    state = fold.add("InvestigationHoldPlaced", scope=["fp-1"])
    assert statuses(state) == {"fp-1": "held", "fp-2": "not_covered"}
    assert public_release_entries(state) == []
    state = fold.add("InvestigationHoldLifted")
    assert statuses(state) == {"fp-1": "eligible", "fp-2": "not_covered"}
    assert public_release_entries(state) == []  # eligible is not released: nothing public yet
    state = fold.add("FootageReleased")
    assert statuses(state) == {"fp-1": "released", "fp-2": "not_covered"}
    state = fold.add("FootageReleased", footage_id="fp-2", sha256=OTHER_SHA, basis="public_records_request")
    assert statuses(state) == {"fp-1": "released", "fp-2": "released"}
    public = public_release_entries(state)
    assert [e["sha256"] for e in public] == [FOOTAGE_SHA, OTHER_SHA]
    # a hold placed after a release does not un-release it, nor change the public list
    state = fold.add("InvestigationHoldPlaced", hold_id="hold-2")
    assert statuses(state)["fp-1"] == "released"
    assert public_release_entries(state) == public
    assert case_view(state)["footage"][0]["held_by"] == ["hold-2"]


def test_public_entries_hold_no_personal_or_internal_data() -> None:
    fold = Fold()
    fold.add("ReportReceived")
    fold.add("IncidentDocumented")
    fold.add("FootageCaptured")
    state = fold.add("FootageReleased")
    entry = public_release_entries(state)[0]
    assert set(entry) == {"sha256", "released_at", "basis", "channel", "url"}
    dumped = json.dumps(entry)
    assert not any(p in dumped for p in PERSONAL) and "bwc-0042" not in dumped
    assert "fp-1" not in dumped and "CPD-2025-0001" not in dumped  # no ids, no case number


def test_timeline_entries_are_short_and_non_personal() -> None:
    c = ctx(3, role="investigator", leaf_index=17)
    entry = timeline_entry(ev("FootageCaptured"), c)
    assert entry == {
        "seq": 3,
        "type": "FootageCaptured",
        "occurred_at": c.occurred_at,
        "actor": "sgt-example",
        "role": "investigator",
        "leaf_index": 17,
        "label": "Footage fp-1 captured (body_worn_camera)",
        "refs": {"footage_id": "fp-1", "source": "body_worn_camera"},
    }
    events: list[Event] = [
        ev(t)
        for t in (
            "CaseOpened",
            "ReportReceived",
            "IncidentDocumented",
            "CustodyTransferred",
            "FootageDerivativeCreated",
            "InvestigationHoldPlaced",
            "InvestigationHoldLifted",
            "FootageReleased",
            "ReferralMade",
            "ReferralAcknowledged",
            "CaseClosed",
            "CaseReopened",
            "EvidenceAccessed",
            "KeyRegistered",
            "KeyRevoked",
        )
    ]
    events.append(ev("FootageReleased", derivative_id="dv-1"))
    events.append(ev("EvidenceAccessed", footage_id=None, derivative_id="dv-1"))
    events.append(ev("InvestigationHoldPlaced", scope=["fp-1", "fp-2"]))
    labels = [timeline_entry(e, ctx(1))["label"] for e in events]
    assert "Report rep-1 received (911_call)" in labels
    assert "Derivative dv-1 of footage fp-1 released (executive_order)" in labels
    assert "Investigation hold hold-1 placed by middlesex_da (2 footage)" in labels
    assert f"Key {key(1)[0][:16]} registered (admin)" in labels
    dumped = json.dumps([timeline_entry(e, ctx(1)) for e in events])
    assert not any(
        p in dumped for p in (*PERSONAL, "Agents", "Referred", "New evidence", "rotation", "review")
    )


def test_replay_helper_folds_in_order() -> None:
    items = [(ev("CaseOpened"), ctx(0)), (ev("FootageCaptured"), ctx(1))]
    state = replay(items, DomainConfig())
    assert state is not None and state.version == 1 and len(state.footage) == 1
    assert replay([]) is None
