"""What each case event records in the state: every field of the new record, compared whole.

A record takes the facts from the event's body and the "who, when, at which seq" from the ledger's
context (``EventContext``: ``occurred_at``, ``seq``, ``actor``), never from the body. The body times
below are chosen to differ from the context's so the two cannot be confused.
"""

from __future__ import annotations

import pytest

from domain.case import CaseState, apply, replay
from domain.context import DomainConfig
from domain.errors import RuleViolation
from domain.records import (
    Acknowledgement,
    CustodyStep,
    Derivative,
    Footage,
    Hold,
    Incident,
    OfficialGroup,
    Referral,
    Release,
    Report,
)
from tests.support.domain import CASE_ID, DERIVATIVE_SHA, FOOTAGE_SHA, OTHER_SHA, Fold, ctx, ev, ts

BODY_FROM = "2025-05-30T08:00:00Z"
BODY_TO = "2025-05-30T08:04:00Z"
BUNDLE_SHA = "0f" * 32


def state_of(fold: Fold) -> CaseState:
    assert fold.state is not None
    return fold.state


def footage_of(state: CaseState, footage_id: str = "fp-1") -> Footage:
    footage = state.footage_by_id(footage_id)
    assert footage is not None
    return footage


def captured_fp1(at_seq: int) -> Footage:
    """fp-1 of the shared test body, as captured at ``at_seq``, recorded BODY_FROM..BODY_TO."""
    return Footage(
        footage_id="fp-1",
        source="body_worn_camera",
        device_id="bwc-0042",
        recorded_from=BODY_FROM,
        recorded_to=BODY_TO,
        sha256=FOOTAGE_SHA,
        size_bytes=1048576,
        media_type="video/mp4",
        depicts=("property_damage_by_federal_officials",),
        stored=True,
        custodian="CPD Evidence Unit",
        captured_at=ts(at_seq),
        captured_seq=at_seq,
        custody_steps=1,
    )


def capture_link(at_seq: int) -> dict[str, object]:
    """The first custody link of fp-1, captured at ``at_seq`` (its leaf index is the context's)."""
    step = CustodyStep(from_custodian=None, to_custodian="CPD Evidence Unit", purpose="capture", at=ts(at_seq), seq=at_seq)
    return {**step.to_json(), "leaf_index": None, "step": 1}


def with_fp1() -> Fold:
    fold = Fold()
    fold.add("FootageCaptured", recorded_from=BODY_FROM, recorded_to=BODY_TO)
    return fold


# ---------------------------------------------------------------------------- lifecycle


def test_opening_records_the_case_as_described_at_the_time_of_the_event() -> None:
    assert Fold().state == CaseState(
        case_id=CASE_ID,
        case_number="CPD-2025-0001",
        category="property_damage",
        summary="Car window",
        status="open",
        version=0,
        opened_at=ts(0),
        updated_at=ts(0),
    )


def test_closing_records_when_and_the_disposition_and_reopening_clears_them() -> None:
    fold = Fold()
    fold.add("ReportReceived")
    closed = fold.add("CaseClosed", disposition="No federal involvement")
    assert (closed.status, closed.closed_at, closed.disposition, closed.version, closed.updated_at) == (
        "closed",
        ts(2),
        "No federal involvement",
        2,
        ts(2),
    )
    reopened = fold.add("CaseReopened")
    assert (reopened.status, reopened.closed_at, reopened.disposition, reopened.reopen_count) == (
        "open",
        None,
        None,
        1,
    )
    assert (reopened.version, reopened.updated_at, reopened.opened_at) == (3, ts(3), ts(0))


def test_a_report_keeps_channel_times_agency_and_whether_the_reporter_is_sealed() -> None:
    fold = Fold()
    fold.add("ReportReceived", channel="walk_in", received_at=BODY_FROM, observed_agency="CBP")
    state = fold.add("ReportReceived", report_id="rep-2", reporter=None)
    assert state.reports == (
        Report(
            report_id="rep-1",
            channel="walk_in",
            received_at=BODY_FROM,
            observed_agency="CBP",
            reporter_sealed=True,
            recorded_at=ts(1),
            seq=1,
        ),
        Report(
            report_id="rep-2",
            channel="911_call",
            received_at=ts(1),
            observed_agency="ICE",
            reporter_sealed=False,
            recorded_at=ts(2),
            seq=2,
        ),
    )


def test_an_incident_keeps_its_times_conduct_and_every_group_of_officials() -> None:
    groups = [
        {
            "agency": "ICE",
            "count": 4,
            "identifiable_uniform": False,
            "face_covered": True,
            "body_camera_worn": False,
            "identified_themselves": None,
        },
        {
            "agency": "CBP",
            "count": 2,
            "identifiable_uniform": True,
            "face_covered": None,
            "body_camera_worn": True,
            "identified_themselves": True,
        },
    ]
    state = Fold().add(
        "IncidentDocumented",
        occurred_from=BODY_FROM,
        occurred_to=BODY_TO,
        conduct=["violence", "property_damage"],
        federal_officials=groups,
    )
    assert state.incidents == (
        Incident(
            incident_id="inc-1",
            occurred_from=BODY_FROM,
            occurred_to=BODY_TO,
            conduct=("violence", "property_damage"),
            federal_officials=(
                OfficialGroup(
                    agency="ICE",
                    count=4,
                    identifiable_uniform=False,
                    face_covered=True,
                    body_camera_worn=False,
                    identified_themselves=None,
                ),
                OfficialGroup(
                    agency="CBP",
                    count=2,
                    identifiable_uniform=True,
                    face_covered=None,
                    body_camera_worn=True,
                    identified_themselves=True,
                ),
            ),
            recorded_at=ts(1),
            seq=1,
        ),
    )


# ---------------------------------------------------------------------------- footage and custody


def test_a_capture_records_the_file_its_first_custodian_and_when() -> None:
    fold = with_fp1()
    assert state_of(fold).footage == (captured_fp1(at_seq=1),)
    assert fold.custody == [("fp-1", capture_link(at_seq=1))]


def test_a_capture_records_a_file_not_in_the_footage_store_as_such() -> None:
    state = Fold().add("FootageCaptured", stored=False, source="resident_submitted", media_type="image/jpeg")
    footage = footage_of(state)
    assert (footage.stored, footage.source, footage.media_type) == (False, "resident_submitted", "image/jpeg")


def test_a_transfer_records_who_to_whom_why_when_and_at_which_seq() -> None:
    fold = with_fp1()
    fold.add("ReportReceived")
    state = fold.add("CustodyTransferred", to_custodian="Middlesex DA", purpose="prosecution")
    footage = footage_of(state)
    assert (footage.custodian, footage.custody_steps) == ("Middlesex DA", 2)
    transfer = CustodyStep(
        from_custodian="CPD Evidence Unit", to_custodian="Middlesex DA", purpose="prosecution", at=ts(3), seq=3
    )
    assert fold.custody == [
        ("fp-1", capture_link(at_seq=1)),
        ("fp-1", {**transfer.to_json(), "leaf_index": None, "step": 2}),
    ]


def test_a_derivative_records_its_file_kind_and_when_on_its_footage() -> None:
    fold = with_fp1()
    fold.add("FootageCaptured", footage_id="fp-2", sha256=OTHER_SHA)
    state = fold.add("FootageDerivativeCreated", kind="clip", size_bytes=4096)
    assert footage_of(state).derivatives == (
        Derivative(
            derivative_id="dv-1", sha256=DERIVATIVE_SHA, kind="clip", size_bytes=4096, created_at=ts(3), seq=3
        ),
    )
    assert footage_of(state, "fp-2").derivatives == ()


def test_access_is_counted_on_the_case_and_on_the_footage_it_reached() -> None:
    fold = with_fp1()
    fold.add("FootageCaptured", footage_id="fp-2", sha256=OTHER_SHA)
    fold.add("FootageDerivativeCreated")  # dv-1 of fp-1
    fold.add("EvidenceAccessed")
    fold.add("EvidenceAccessed")
    fold.add("EvidenceAccessed", footage_id=None, derivative_id="dv-1")  # counted on fp-1
    state = fold.add("EvidenceAccessed", footage_id="fp-2")
    assert (footage_of(state).accesses, footage_of(state, "fp-2").accesses, state.accesses) == (3, 1, 4)


# ---------------------------------------------------------------------------- holds and releases


def test_a_hold_records_its_scope_authority_and_when() -> None:
    fold = with_fp1()
    fold.add("InvestigationHoldPlaced", authority="court")
    state = fold.add(
        "InvestigationHoldPlaced", hold_id="hold-2", scope=["fp-1"], authority="massachusetts_ag"
    )
    assert state.holds == (
        Hold(hold_id="hold-1", scope="case", authority="court", placed_at=ts(2), placed_seq=2),
        Hold(hold_id="hold-2", scope=("fp-1",), authority="massachusetts_ag", placed_at=ts(3), placed_seq=3),
    )


def test_lifting_a_hold_records_when_and_leaves_the_other_holds_active() -> None:
    fold = with_fp1()
    fold.add("InvestigationHoldPlaced")
    fold.add("InvestigationHoldPlaced", hold_id="hold-2", scope=["fp-1"])
    state = fold.add("InvestigationHoldLifted", hold_id="hold-2")
    assert state.holds == (
        Hold(hold_id="hold-1", scope="case", authority="middlesex_da", placed_at=ts(2), placed_seq=2),
        Hold(
            hold_id="hold-2",
            scope=("fp-1",),
            authority="middlesex_da",
            placed_at=ts(3),
            placed_seq=3,
            active=False,
            lifted_at=ts(4),
            lifted_seq=4,
        ),
    )
    assert [h.hold_id for h in state.active_holds_covering("fp-1")] == ["hold-1"]


def test_a_release_records_what_was_released_on_which_basis_where_and_when() -> None:
    fold = with_fp1()
    fold.add("FootageDerivativeCreated")
    fold.add("FootageReleased", channel="press_conference")
    state = fold.add(
        "FootageReleased",
        derivative_id="dv-1",
        sha256=DERIVATIVE_SHA,
        basis="court_order",
        channel="cambridgema.gov",
        url="https://cambridgema.gov/r/1",
    )
    assert state.releases == (
        Release(
            footage_id="fp-1",
            derivative_id=None,
            sha256=FOOTAGE_SHA,
            basis="executive_order",
            channel="press_conference",
            url=None,
            at=ts(3),
            seq=3,
        ),
        Release(
            footage_id="fp-1",
            derivative_id="dv-1",
            sha256=DERIVATIVE_SHA,
            basis="court_order",
            channel="cambridgema.gov",
            url="https://cambridgema.gov/r/1",
            at=ts(4),
            seq=4,
        ),
    )


# ---------------------------------------------------------------------------- referrals


def test_a_referral_records_its_authority_basis_bundle_and_when() -> None:
    fold = Fold()
    fold.add("ReferralMade", basis="Assault", bundle_sha256=BUNDLE_SHA)
    state = fold.add("ReferralMade", referral_id="ref-2", authority="massachusetts_ag")
    assert state.referrals == (
        Referral(
            referral_id="ref-1",
            authority="middlesex_da",
            basis="Assault",
            bundle_sha256=BUNDLE_SHA,
            made_at=ts(1),
            seq=1,
        ),
        Referral(
            referral_id="ref-2",
            authority="massachusetts_ag",
            basis="Malicious destruction",
            bundle_sha256=None,
            made_at=ts(2),
            seq=2,
        ),
    )


def test_an_acknowledgement_records_the_note_who_and_when_on_that_referral_only() -> None:
    fold = Fold()
    fold.add("ReferralMade")
    fold.add("ReferralMade", referral_id="ref-2")
    prosecutor = ctx(3, role="prosecutor", authority="middlesex_da", actor="ada-okafor")
    state = apply(
        fold.state, ev("ReferralAcknowledged", referral_id="ref-2", note="Opened a file"), prosecutor
    )
    assert [r.acknowledgement for r in state.referrals] == [
        None,
        Acknowledgement(note="Opened a file", at=ts(3), actor="ada-okafor", seq=3),
    ]


# ---------------------------------------------------------------------------- replay


def test_replay_applies_the_configuration_to_every_event() -> None:
    opened = (ev("CaseOpened"), ctx(0))
    referral = (ev("ReferralMade", authority="us_attorney"), ctx(1))
    state = replay([opened, referral], DomainConfig(authorities=("us_attorney",)))
    assert state is not None and [r.authority for r in state.referrals] == ["us_attorney"]
    with pytest.raises(RuleViolation) as info:
        replay([opened, referral])
    assert info.value.code == "AUTHORITY_NOT_CONFIGURED"


def test_replay_of_nothing_is_no_case() -> None:
    assert replay([]) is None
