"""Sealed records in a case: two-person disclosure, refusals on record, shredding (domain/case_sealed.py).

Every refusal is driven once with its exact code, refs and message; each accepted event's record
is compared whole."""

from __future__ import annotations

from typing import Any

import pytest

from domain.case_sealed import within_window
from domain.context import DomainConfig
from domain.errors import AuthorizationError, InvalidEventError, LedgerError, RuleViolation
from domain.events import SealedDisclosureRefused, introduced_sealed_ref
from domain.projections import case_view
from domain.records import Approval, DisclosureRequest, SealedRecordRef
from tests.support.domain import DROP, Fold, ev, ts

REF = "sealed:0001"
T0 = "2025-06-01T12:00:00Z"
DAY_LATER = "2025-06-02T12:00:00Z"
JUST_AFTER_A_DAY = "2025-06-02T12:00:00.000000001Z"


def with_report(config: DomainConfig | None = None) -> Fold:
    fold = Fold(config)
    fold.add("ReportReceived", role="investigator")
    return fold


def requested(config: DomainConfig | None = None, *, at: str = T0) -> Fold:
    fold = with_report(config)
    fold.add("SealedDisclosureRequested", role="investigator", actor="det-rivera", at=at)
    return fold


def approved(config: DomainConfig | None = None) -> Fold:
    fold = requested(config)
    fold.add("SealedDisclosureApproved", role="counsel", actor="counsel-example", at=T0)
    return fold


def refused(fold: Fold, type_name: str, code: str, message: str, **kwargs: Any) -> LedgerError:
    exc = fold.refused(type_name, **kwargs)
    assert (exc.code, exc.message) == (code, message), (exc.code, exc.message)
    return exc


def disclose(fold: Fold, **kwargs: Any) -> Any:
    kwargs.setdefault("role", "investigator")
    kwargs.setdefault("actor", "det-rivera")
    kwargs.setdefault("at", T0)
    return fold.add("SealedRecordDisclosed", **kwargs)


# ---------------------------------------------------------------------------- the window


def test_window_is_inclusive_to_the_nanosecond() -> None:
    assert within_window(T0, T0, 0)
    assert within_window(T0, DAY_LATER, 86400)
    assert not within_window(T0, JUST_AFTER_A_DAY, 86400)
    assert within_window("2025-06-01T12:00:00.5Z", "2025-06-01T12:00:01.5Z", 1)
    assert not within_window("2025-06-01T12:00:00.5Z", "2025-06-01T12:00:01.500000001Z", 1)
    assert within_window(T0, "2025-06-01T11:00:00Z", 1)  # earlier is inside
    assert DomainConfig().disclosure_window_seconds == 86400


def test_the_window_is_judged_at_the_end_of_time_too() -> None:
    """A signed request dated on the last day of year 9999: its window ends past what a datetime can
    hold, which once crashed the replay (and `verify`) instead of judging the event."""
    last = "9999-12-31T23:00:00Z"
    assert within_window(last, "9999-12-31T23:59:59.999999999Z", 86400)
    assert not within_window("0001-01-01T00:00:00Z", last, 86400)
    assert not within_window(last, "9999-12-31T23:00:01Z", 0)


# ---------------------------------------------------------------------------- reports bring records in


def test_a_report_brings_its_sealed_record_into_the_case_once() -> None:
    fold = with_report()
    assert fold.state is not None
    assert fold.state.sealed == (SealedRecordRef(sealed_ref=REF, report_id="rep-1", seq=1),)
    state = fold.add("ReportReceived", role="investigator", report_id="rep-2")
    assert state.sealed == (SealedRecordRef(sealed_ref=REF, report_id="rep-1", seq=1),)
    state = fold.add("ReportReceived", report_id="rep-3", reporter=None)
    assert len(state.sealed) == 1 and len(state.reports) == 3
    other = fold.add("ReportReceived", report_id="rep-4", reporter={"sealed_ref": "s-2", "commitment": "34" * 32})
    assert other.sealed[1] == SealedRecordRef(sealed_ref="s-2", report_id="rep-4", seq=4)


def test_introduced_sealed_ref_names_the_reporters_record_only() -> None:
    assert introduced_sealed_ref(ev("ReportReceived")) == REF
    assert introduced_sealed_ref(ev("ReportReceived", reporter=None)) is None
    assert introduced_sealed_ref(ev("SealedDisclosureRequested")) is None
    assert introduced_sealed_ref(ev("CaseOpened")) is None


def test_a_report_cannot_name_a_shredded_record() -> None:
    fold = with_report()
    fold.add("SealedRecordShredded")
    exc = refused(fold, "ReportReceived", "SHREDDED", "the sealed record was shredded", report_id="rep-2")
    assert exc.refs == {"sealed_ref": REF}


# ---------------------------------------------------------------------------- requests


def test_a_request_records_who_asked_and_when() -> None:
    state = requested().state
    assert state is not None
    assert state.disclosures == (
        DisclosureRequest(
            request_id="dreq-1", sealed_ref=REF, requester="det-rivera", requester_role="investigator",
            requested_at=T0, seq=2,
        ),
    )


def test_a_request_is_refused_for_a_record_of_another_case_or_a_reused_id() -> None:
    exc = refused(
        with_report(), "SealedDisclosureRequested", "SEALED_REF_NOT_IN_CASE",
        "no sealed record with this reference in the case", sealed_ref="other-ref",
    )
    assert exc.refs == {"sealed_ref": "other-ref"}
    exc = refused(requested(), "SealedDisclosureRequested", "DUPLICATE_ID", "request_id is already used in this case")
    assert exc.refs == {"request_id": "dreq-1"}


def test_a_request_is_refused_for_a_shredded_record() -> None:
    fold = with_report()
    fold.add("SealedRecordShredded")
    exc = refused(fold, "SealedDisclosureRequested", "SHREDDED", "the sealed record was shredded")
    assert exc.refs == {"sealed_ref": REF}


def test_only_investigators_supervisors_and_counsel_may_ask() -> None:
    for role in ("investigator", "supervisor", "counsel"):
        fold = with_report()
        assert fold.add("SealedDisclosureRequested", role=role).disclosures[0].requester_role == role
    for role in ("auditor", "prosecutor", "service", "admin"):
        exc = with_report().refused("SealedDisclosureRequested", role=role)
        assert isinstance(exc, AuthorizationError) and exc.code == "ROLE_NOT_ALLOWED"


# ---------------------------------------------------------------------------- approvals


def test_an_approval_by_another_person_is_recorded() -> None:
    fold = approved()
    state = fold.add("SealedDisclosureApproved", role="supervisor", actor="sgt-other", at=DAY_LATER)
    assert state.disclosures[0].approvals == (
        Approval(actor="counsel-example", role="counsel", at=T0, seq=3),
        Approval(actor="sgt-other", role="supervisor", at=DAY_LATER, seq=4),
    )
    assert state.disclosures[0].disclosed_at is None and state.disclosures[0].disclosed_seq is None


def test_the_requester_cannot_approve_their_own_request() -> None:
    fold = requested()
    exc = refused(
        fold, "SealedDisclosureApproved", "SAME_PERSON",
        "a disclosure must be approved by another person than the one who asked",
        role="supervisor", actor="det-rivera", at=T0,
    )
    assert isinstance(exc, RuleViolation) and exc.refs == {"request_id": "dreq-1"}


def test_one_person_approves_once() -> None:
    exc = refused(
        approved(), "SealedDisclosureApproved", "ALREADY_APPROVED", "this person already approved the request",
        role="supervisor", actor="counsel-example", at=T0,
    )
    assert exc.refs == {"request_id": "dreq-1"}


def test_an_approval_after_the_window_is_refused() -> None:
    fold = requested()
    exc = refused(
        fold, "SealedDisclosureApproved", "REQUEST_EXPIRED",
        "the request is older than the disclosure window; ask again",
        actor="counsel-example", at=JUST_AFTER_A_DAY,
    )
    assert exc.refs == {"request_id": "dreq-1"}
    assert fold.add("SealedDisclosureApproved", actor="counsel-example", at=DAY_LATER).disclosures[0].approvals


def test_the_window_is_configured() -> None:
    fold = requested(DomainConfig(disclosure_window_seconds=60))
    refused(
        fold, "SealedDisclosureApproved", "REQUEST_EXPIRED",
        "the request is older than the disclosure window; ask again",
        actor="counsel-example", at="2025-06-01T12:01:00.1Z",
    )
    fold.add("SealedDisclosureApproved", actor="counsel-example", at="2025-06-01T12:01:00Z")
    refused(
        fold, "SealedRecordDisclosed", "APPROVAL_EXPIRED",
        "the approval expired with the disclosure window; ask again",
        role="investigator", actor="det-rivera", at="2025-06-01T12:01:00.1Z",
    )
    assert disclose(fold, at="2025-06-01T12:01:00Z").disclosures[0].disclosed_seq == 4


def test_only_supervisors_and_counsel_approve() -> None:
    for role in ("investigator", "auditor", "prosecutor", "service", "admin"):
        exc = requested().refused("SealedDisclosureApproved", role=role, actor="someone-else")
        assert isinstance(exc, AuthorizationError) and exc.code == "ROLE_NOT_ALLOWED"
        assert exc.refs == {"role": role, "event_type": "SealedDisclosureApproved"}


def test_an_approval_of_an_unknown_request_is_refused() -> None:
    exc = refused(
        with_report(), "SealedDisclosureApproved", "UNKNOWN_DISCLOSURE_REQUEST",
        "no disclosure request with this id in the case", actor="counsel-example",
    )
    assert exc.refs == {"request_id": "dreq-1"}


def test_no_approval_after_the_disclosure_or_the_shred() -> None:
    fold = approved()
    disclose(fold)
    exc = refused(
        fold, "SealedDisclosureApproved", "DISCLOSURE_ALREADY_MADE",
        "the record was already disclosed for this request", actor="sgt-other",
    )
    assert exc.refs == {"request_id": "dreq-1"}
    fold = requested()
    fold.add("SealedRecordShredded")
    exc = refused(fold, "SealedDisclosureApproved", "SHREDDED", "the sealed record was shredded", actor="sgt-other")
    assert exc.refs == {"sealed_ref": REF}


# ---------------------------------------------------------------------------- disclosure


def test_a_disclosure_needs_an_approval() -> None:
    exc = refused(
        requested(), "SealedRecordDisclosed", "DISCLOSURE_NOT_APPROVED",
        "the request has no approval by another person",
        role="investigator", actor="det-rivera", at=T0,
    )
    assert exc.refs == {"request_id": "dreq-1"}


def test_an_approved_disclosure_is_recorded_once() -> None:
    fold = approved()
    state = disclose(fold, at=DAY_LATER)
    assert state.disclosures[0].disclosed_at == DAY_LATER and state.disclosures[0].disclosed_seq == 4
    exc = refused(
        fold, "SealedRecordDisclosed", "DISCLOSURE_ALREADY_MADE", "the record was already disclosed for this request",
        role="investigator", actor="det-rivera", at=T0,
    )
    assert exc.refs == {"request_id": "dreq-1"}


def test_a_disclosure_after_the_window_is_refused() -> None:
    exc = refused(
        approved(), "SealedRecordDisclosed", "APPROVAL_EXPIRED",
        "the approval expired with the disclosure window; ask again",
        role="investigator", actor="det-rivera", at=JUST_AFTER_A_DAY,
    )
    assert exc.refs == {"request_id": "dreq-1"}


def test_only_the_requester_discloses() -> None:
    exc = refused(
        approved(), "SealedRecordDisclosed", "DISCLOSER_NOT_REQUESTER", "only the person who asked may disclose the record",
        role="supervisor", actor="sgt-other", at=T0,
    )
    assert exc.refs == {"request_id": "dreq-1"}
    exc = approved().refused("SealedRecordDisclosed", role="auditor", actor="det-rivera")
    assert exc.code == "ROLE_NOT_ALLOWED"


def test_a_disclosure_names_the_requested_record_and_exactly_its_approvers() -> None:
    exc = refused(
        approved(), "SealedRecordDisclosed", "SEALED_REF_MISMATCH", "the request is for another sealed record",
        role="investigator", actor="det-rivera", at=T0, sealed_ref="other-ref",
    )
    assert exc.refs == {"request_id": "dreq-1"}
    for approvers in (["someone-else"], ["counsel-example", "sgt-other"]):
        exc = refused(
            approved(), "SealedRecordDisclosed", "APPROVERS_MISMATCH",
            "approvers must name exactly the people who approved the request",
            role="investigator", actor="det-rivera", at=T0, approvers=approvers,
        )
        assert exc.refs == {"request_id": "dreq-1"}
    fold = approved()
    fold.add("SealedDisclosureApproved", actor="sgt-other", at=T0)
    assert disclose(fold, approvers=["sgt-other", "counsel-example"]).disclosures[0].disclosed_seq == 5


def test_a_disclosure_of_an_unknown_request_or_a_shredded_record_is_refused() -> None:
    exc = refused(
        with_report(), "SealedRecordDisclosed", "UNKNOWN_DISCLOSURE_REQUEST", "no disclosure request with this id in the case",
        role="investigator", actor="det-rivera",
    )
    assert exc.refs == {"request_id": "dreq-1"}
    fold = approved()
    fold.add("SealedRecordShredded")
    exc = refused(
        fold, "SealedRecordDisclosed", "SHREDDED", "the sealed record was shredded",
        role="investigator", actor="det-rivera", at=T0,
    )
    assert exc.refs == {"sealed_ref": REF}


def test_a_closed_case_still_discloses_and_records_refusals() -> None:
    fold = approved()
    fold.add("CaseClosed")
    assert disclose(fold).disclosures[0].disclosed_seq == 5


# ---------------------------------------------------------------------------- refusals on record


def test_a_refusal_is_counted_and_never_refused() -> None:
    fold = with_report()
    assert fold.add("SealedDisclosureRefused").disclosure_refusals == 1
    fold.add("CaseClosed")
    state = fold.add("SealedDisclosureRefused", request_id=DROP, sealed_ref="unknown-ref")
    assert state.disclosure_refusals == 2 and state.status == "closed"
    exc = with_report().refused("SealedDisclosureRefused", role="supervisor")
    assert exc.code == "ROLE_NOT_ALLOWED"


def test_a_refusal_names_a_request_or_a_record() -> None:
    with pytest.raises(InvalidEventError) as info:
        ev("SealedDisclosureRefused", request_id=DROP, sealed_ref=DROP)
    assert info.value.refs == {"field": "request_id|sealed_ref", "expected": "at least one of request_id and sealed_ref"}
    only = ev("SealedDisclosureRefused", sealed_ref=DROP)
    assert isinstance(only, SealedDisclosureRefused) and only.request_id == "dreq-1"
    with pytest.raises(InvalidEventError):
        ev("SealedDisclosureRefused", attempted="SealedRecordShredded")


# ---------------------------------------------------------------------------- shredding


def test_a_shred_marks_the_record_shredded() -> None:
    fold = with_report()
    state = fold.add("SealedRecordShredded", at=DAY_LATER)
    assert state.sealed == (
        SealedRecordRef(
            sealed_ref=REF, report_id="rep-1", seq=1, shredded=True, shredded_at=DAY_LATER, shredded_seq=2
        ),
    )
    exc = refused(fold, "SealedRecordShredded", "SHREDDED", "the sealed record was shredded")
    assert exc.refs == {"sealed_ref": REF}


def test_a_shred_of_a_record_of_another_case_is_refused() -> None:
    exc = refused(
        with_report(), "SealedRecordShredded", "SEALED_REF_NOT_IN_CASE",
        "no sealed record with this reference in the case", sealed_ref="other-ref",
    )
    assert exc.refs == {"sealed_ref": "other-ref"}


BLOCKED = "an active investigation hold or an unacknowledged referral covers the case"


@pytest.mark.parametrize("scope", ["case", ["fp-1"]])
def test_an_active_hold_blocks_the_shred(scope: object) -> None:
    fold = with_report()
    fold.add("FootageCaptured")
    fold.add("InvestigationHoldPlaced", scope=scope)
    exc = refused(fold, "SealedRecordShredded", "SHRED_BLOCKED_BY_HOLD", BLOCKED)
    assert isinstance(exc, RuleViolation) and exc.refs == {"sealed_ref": REF, "hold_id": "hold-1"}
    fold.add("InvestigationHoldLifted")
    assert fold.add("SealedRecordShredded").sealed[0].shredded


def test_an_unacknowledged_referral_blocks_the_shred() -> None:
    fold = with_report()
    fold.add("ReferralMade", role="investigator")
    exc = refused(fold, "SealedRecordShredded", "SHRED_BLOCKED_BY_HOLD", BLOCKED)
    assert exc.refs == {"sealed_ref": REF, "referral_id": "ref-1"}
    fold.add("ReferralAcknowledged", role="prosecutor")
    fold.add("CaseClosed")
    assert fold.add("SealedRecordShredded", role="service").sealed[0].shredded


def test_the_hold_is_named_before_the_referral() -> None:
    fold = with_report()
    fold.add("ReferralMade", role="investigator")
    fold.add("InvestigationHoldPlaced")
    exc = refused(fold, "SealedRecordShredded", "SHRED_BLOCKED_BY_HOLD", BLOCKED)
    assert exc.refs == {"sealed_ref": REF, "hold_id": "hold-1"}


def test_who_may_shred() -> None:
    for role in ("supervisor", "counsel", "service"):
        assert with_report().add("SealedRecordShredded", role=role).sealed[0].shredded
    for role in ("investigator", "auditor", "prosecutor", "admin"):
        assert with_report().refused("SealedRecordShredded", role=role).code == "ROLE_NOT_ALLOWED"


# ---------------------------------------------------------------------------- the view and the timeline


def test_the_case_view_shows_records_requests_and_refusals_by_id_only() -> None:
    fold = approved()
    fold.add("SealedDisclosureRefused")
    state = disclose(fold, at=DAY_LATER)
    view = case_view(state)
    assert view["sealed"] == [
        {"sealed_ref": REF, "report_id": "rep-1", "seq": 1, "shredded": False, "shredded_at": None,
         "shredded_seq": None}
    ]
    assert view["disclosures"] == [
        {
            "request_id": "dreq-1", "sealed_ref": REF, "requester": "det-rivera", "requester_role": "investigator",
            "requested_at": T0, "seq": 2,
            "approvals": [{"actor": "counsel-example", "role": "counsel", "at": T0, "seq": 3}],
            "disclosed_at": DAY_LATER, "disclosed_seq": 5,
        }
    ]
    assert view["disclosure_refusals"] == 1
    text = repr(view)
    assert "Witness interview" not in text and "Summons" not in text and "Caller saw" not in text


def test_labels() -> None:
    from domain.events import declared
    from tests.support.domain import body

    labels = {name: declared(name).label(body(name)) for name in (  # type: ignore[union-attr]
        "SealedDisclosureRequested", "SealedDisclosureApproved", "SealedRecordDisclosed",
        "SealedDisclosureRefused", "SealedRecordShredded",
    )}
    assert labels == {
        "SealedDisclosureRequested": "Disclosure dreq-1 of sealed record sealed:0001 requested",
        "SealedDisclosureApproved": "Disclosure dreq-1 approved",
        "SealedRecordDisclosed": "Sealed record sealed:0001 disclosed (request dreq-1)",
        "SealedDisclosureRefused": "SealedDisclosureApproved refused (SAME_PERSON)",
        "SealedRecordShredded": "Sealed record sealed:0001 shredded",
    }
    assert ts(0) == T0


def test_approving_one_request_leaves_the_others_as_they_were() -> None:
    fold = requested()
    fold.add("SealedDisclosureRequested", role="investigator", actor="det-rivera", at=T0, request_id="dreq-2")
    state = fold.add("SealedDisclosureApproved", role="counsel", actor="counsel-example", at=T0, request_id="dreq-2")
    first, second = state.disclosures
    assert (first.request_id, first.approvals) == ("dreq-1", ())
    assert (second.request_id, [a.actor for a in second.approvals]) == ("dreq-2", ["counsel-example"])


def test_a_shred_destroys_only_the_named_record() -> None:
    other = "sealed:0002"
    fold = with_report()
    fold.add("ReportReceived", role="investigator", report_id="rep-2",
             reporter={"sealed_ref": other, "commitment": "34" * 32})
    state = fold.add("SealedRecordShredded", at=DAY_LATER)
    assert state.sealed == (
        SealedRecordRef(
            sealed_ref=REF, report_id="rep-1", seq=1, shredded=True, shredded_at=DAY_LATER, shredded_seq=3
        ),
        SealedRecordRef(sealed_ref=other, report_id="rep-2", seq=2),
    )
