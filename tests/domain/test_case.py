"""Case rules: every rule code, with its refs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.case import ALLOWED_WHEN_CLOSED, CaseState, apply
from domain.context import REGISTRY_STREAM_ID, DomainConfig, EventContext
from domain.errors import (
    AuthorizationError,
    InvalidEventError,
    LedgerError,
    MalformedInputError,
    RuleViolation,
)
from tests.support.domain import (
    CASE_ID,
    DERIVATIVE_SHA,
    FOOTAGE_SHA,
    OTHER_SHA,
    SIGNER,
    Fold,
    ctx,
    ev,
    key,
    ts,
)


def with_footage(**overrides: Any) -> Fold:
    fold = Fold()
    fold.add("FootageCaptured", **overrides)
    return fold


def assert_refused(exc: LedgerError, code: str, **refs: object) -> None:
    assert exc.code == code
    for name, value in refs.items():
        assert exc.refs[name] == value, (name, exc.refs)


# ---------------------------------------------------------------------------- lifecycle


def test_case_opened_starts_the_state() -> None:
    state = Fold().state
    assert state is not None
    assert (state.case_id, state.case_number, state.status, state.version) == (
        CASE_ID,
        "CPD-2025-0001",
        "open",
        0,
    )
    assert state.opened_at == state.updated_at == ts(0)


def test_first_event_must_be_case_opened() -> None:
    fold = Fold(open_case=False)
    exc = fold.refused("ReportReceived")
    assert isinstance(exc, RuleViolation)
    assert_refused(exc, "CASE_NOT_OPENED", case_id=CASE_ID)


def test_case_cannot_be_opened_twice() -> None:
    assert_refused(Fold().refused("CaseOpened"), "CASE_ALREADY_OPENED", case_id=CASE_ID)


def test_closed_case_refuses_everything_but_reopen_and_access_logging() -> None:
    fold = with_footage()
    fold.add("CaseClosed")
    assert fold.state is not None and fold.state.status == "closed" and fold.state.disposition == "Referred"
    exc = fold.refused("ReportReceived")
    assert_refused(exc, "CASE_CLOSED", case_id=CASE_ID, event_type="ReportReceived")
    assert_refused(fold.refused("CaseClosed"), "CASE_CLOSED")
    assert fold.add("EvidenceAccessed").accesses == 1
    # sealed records stay disclosable (legal process outlives a case) and shreddable (retention
    # shreds closed cases); refused attempts are recorded whatever the status
    sealed = {
        "SealedDisclosureRequested", "SealedDisclosureApproved", "SealedRecordDisclosed",
        "SealedDisclosureRefused", "SealedRecordShredded",
    }
    assert {"CaseReopened", "EvidenceAccessed", *sealed} == ALLOWED_WHEN_CLOSED
    reopened = fold.add("CaseReopened")
    assert (reopened.status, reopened.closed_at, reopened.disposition, reopened.reopen_count) == (
        "open",
        None,
        None,
        1,
    )


def test_reopen_of_an_open_case_is_refused() -> None:
    assert_refused(Fold().refused("CaseReopened"), "CASE_NOT_CLOSED", case_id=CASE_ID)


def test_version_and_updated_at_follow_the_context() -> None:
    fold = Fold()
    state = fold.add("ReportReceived")
    assert (state.version, state.updated_at, state.opened_at) == (1, ts(1), ts(0))


def test_registry_events_and_stream_are_not_case_events() -> None:
    fold = Fold()
    with pytest.raises(RuleViolation) as info:
        apply(fold.state, ev("KeyRegistered"), ctx(1, role="admin"))
    assert_refused(info.value, "WRONG_STREAM", event_type="KeyRegistered")
    with pytest.raises(RuleViolation) as info:
        apply(None, ev("CaseOpened"), ctx(0, case_id=REGISTRY_STREAM_ID))
    assert_refused(info.value, "WRONG_STREAM", case_id=REGISTRY_STREAM_ID)


def test_state_of_another_case_is_refused() -> None:
    fold = Fold()
    with pytest.raises(RuleViolation) as info:
        apply(fold.state, ev("ReportReceived"), ctx(1, case_id="other-case"))
    assert_refused(info.value, "CASE_MISMATCH", case_id="other-case", state=CASE_ID)


def test_context_is_validated() -> None:
    with pytest.raises(InvalidEventError) as info:
        EventContext(
            case_id=CASE_ID, seq=0, occurred_at="yesterday", signer_key_id=SIGNER, actor="a", role="x"
        )
    assert_refused(info.value, "INVALID_CONTEXT", field="occurred_at")
    with pytest.raises(InvalidEventError) as info:
        EventContext(case_id=CASE_ID, seq=True, occurred_at=ts(0), signer_key_id=SIGNER, actor="a", role="x")
    assert_refused(info.value, "INVALID_CONTEXT", field="seq")
    with pytest.raises(InvalidEventError):
        EventContext(case_id=CASE_ID, seq=0, occurred_at=ts(0), signer_key_id="k", actor="a", role="x")


# ---------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize(
    ("type_name", "ref"),
    [
        ("ReportReceived", "report_id"),
        ("IncidentDocumented", "incident_id"),
        ("FootageCaptured", "footage_id"),
        ("FootageDerivativeCreated", "derivative_id"),
        ("InvestigationHoldPlaced", "hold_id"),
        ("ReferralMade", "referral_id"),
    ],
)
def test_duplicate_ids_are_refused(type_name: str, ref: str) -> None:
    fold = with_footage()
    if type_name != "FootageCaptured":
        fold.add(type_name)
    exc = fold.refused(type_name)
    assert_refused(exc, "DUPLICATE_ID", **{ref: ev(type_name).to_body()[ref]})


def test_lifted_hold_id_cannot_be_reused() -> None:
    fold = with_footage()
    fold.add("InvestigationHoldPlaced")
    fold.add("InvestigationHoldLifted")
    assert_refused(fold.refused("InvestigationHoldPlaced"), "DUPLICATE_ID", hold_id="hold-1")


def test_derivative_ids_are_unique_across_footage() -> None:
    fold = with_footage()
    fold.add("FootageCaptured", footage_id="fp-2")
    fold.add("FootageDerivativeCreated")
    exc = fold.refused("FootageDerivativeCreated", footage_id="fp-2")
    assert_refused(exc, "DUPLICATE_ID", derivative_id="dv-1")


# ---------------------------------------------------------------------------- unknown references


@pytest.mark.parametrize(
    ("type_name", "overrides"),
    [
        ("CustodyTransferred", {}),
        ("FootageDerivativeCreated", {}),
        ("FootageReleased", {}),
        ("InvestigationHoldPlaced", {"scope": ["fp-1"]}),
        ("EvidenceAccessed", {}),
    ],
)
def test_unknown_footage(type_name: str, overrides: dict[str, object]) -> None:
    exc = Fold().refused(type_name, **overrides)
    assert_refused(exc, "UNKNOWN_FOOTAGE", footage_id="fp-1")


def test_hold_scope_names_every_footage() -> None:
    exc = with_footage().refused("InvestigationHoldPlaced", scope=["fp-1", "fp-9"])
    assert_refused(exc, "UNKNOWN_FOOTAGE", footage_id="fp-9")


def test_unknown_derivative_on_release_and_access() -> None:
    fold = with_footage()
    exc = fold.refused("FootageReleased", derivative_id="dv-9", sha256=DERIVATIVE_SHA)
    assert_refused(exc, "UNKNOWN_DERIVATIVE", derivative_id="dv-9")
    exc = fold.refused("EvidenceAccessed", footage_id=None, derivative_id="dv-9")
    assert_refused(exc, "UNKNOWN_DERIVATIVE", derivative_id="dv-9")


def test_derivative_parent_mismatch() -> None:
    fold = with_footage()
    fold.add("FootageCaptured", footage_id="fp-2", sha256=OTHER_SHA)
    fold.add("FootageDerivativeCreated")  # of fp-1
    exc = fold.refused("FootageReleased", footage_id="fp-2", derivative_id="dv-1", sha256=DERIVATIVE_SHA)
    assert_refused(exc, "DERIVATIVE_PARENT_MISMATCH", derivative_id="dv-1", footage_id="fp-2")


# ---------------------------------------------------------------------------- releases


def test_release_sha256_must_match_footage() -> None:
    exc = with_footage().refused("FootageReleased", sha256=OTHER_SHA)
    assert_refused(exc, "SHA256_MISMATCH", footage_id="fp-1", derivative_id=None)


def test_release_sha256_must_match_derivative() -> None:
    fold = with_footage()
    fold.add("FootageDerivativeCreated")
    exc = fold.refused("FootageReleased", derivative_id="dv-1", sha256=FOOTAGE_SHA)
    assert_refused(exc, "SHA256_MISMATCH", footage_id="fp-1", derivative_id="dv-1")
    state = fold.add("FootageReleased", derivative_id="dv-1", sha256=DERIVATIVE_SHA)
    assert state.releases[0].derivative_id == "dv-1"


def test_release_under_case_scope_hold() -> None:
    fold = with_footage()
    fold.add("InvestigationHoldPlaced")
    exc = fold.refused("FootageReleased")
    assert_refused(exc, "RELEASE_UNDER_HOLD", hold_id="hold-1", footage_id="fp-1")


def test_case_scope_hold_covers_footage_captured_later() -> None:
    fold = Fold()
    fold.add("InvestigationHoldPlaced")
    fold.add("FootageCaptured")
    assert_refused(fold.refused("FootageReleased"), "RELEASE_UNDER_HOLD", hold_id="hold-1")


def test_list_scope_hold_covers_only_listed_footage() -> None:
    fold = with_footage()
    fold.add("FootageCaptured", footage_id="fp-2", sha256=OTHER_SHA)
    fold.add("InvestigationHoldPlaced", hold_id="hold-2", scope=["fp-2"])
    exc = fold.refused("FootageReleased", footage_id="fp-2", sha256=OTHER_SHA)
    assert_refused(exc, "RELEASE_UNDER_HOLD", hold_id="hold-2", footage_id="fp-2")
    assert len(fold.add("FootageReleased").releases) == 1


def test_release_after_hold_lifted() -> None:
    fold = with_footage()
    fold.add("InvestigationHoldPlaced")
    state = fold.add("InvestigationHoldLifted")
    hold = state.hold_by_id("hold-1")
    assert hold is not None and (hold.active, hold.lifted_at, hold.lifted_seq) == (False, ts(3), 3)
    assert fold.add("FootageReleased").releases[0].basis == "executive_order"


def test_executive_order_release_needs_federal_misconduct_footage() -> None:
    fold = with_footage(depicts=["other"])
    assert_refused(fold.refused("FootageReleased"), "RELEASE_NOT_ELIGIBLE", footage_id="fp-1")
    state = fold.add("FootageReleased", basis="public_records_request")
    assert state.releases[0].basis == "public_records_request"


def test_hold_lifting_needs_an_active_hold() -> None:
    fold = with_footage()
    assert_refused(fold.refused("InvestigationHoldLifted"), "HOLD_NOT_ACTIVE", hold_id="hold-1")
    fold.add("InvestigationHoldPlaced")
    fold.add("InvestigationHoldLifted")
    assert_refused(fold.refused("InvestigationHoldLifted"), "HOLD_NOT_ACTIVE", hold_id="hold-1")


# ---------------------------------------------------------------------------- custody


def test_custody_chain_starts_at_capture_and_follows_transfers() -> None:
    fold = with_footage()
    state = fold.add("CustodyTransferred")
    footage = state.footage_by_id("fp-1")
    assert footage is not None and footage.custodian == "CPD Video Lab" and footage.custody_steps == 2
    chain = [(f, s["step"], s["from_custodian"], s["to_custodian"], s["purpose"], s["seq"]) for f, s in fold.custody]
    assert chain == [
        ("fp-1", 1, None, "CPD Evidence Unit", "capture", 1),
        ("fp-1", 2, "CPD Evidence Unit", "CPD Video Lab", "redaction", 2),
    ]


def test_the_state_counts_custody_links_and_does_not_grow_with_them() -> None:
    """The chain is rows of the ledger's own; the state keeps the custodian and the count only."""
    fold = with_footage()
    small = len(json.dumps(fold.add("CustodyTransferred").to_json()))
    for i in range(50):
        fold.add("CustodyTransferred", from_custodian=fold.custody[-1][1]["to_custodian"], to_custodian=f"Unit {i}")
    state = fold.state
    assert state is not None
    footage = state.footage_by_id("fp-1")
    assert footage is not None and footage.custody_steps == 52 == len(fold.custody)
    assert footage.custodian == "Unit 49"
    assert len(json.dumps(state.to_json())) <= small + 2  # the count gained a digit; nothing else grew


def test_a_refused_transfer_adds_no_link() -> None:
    fold = with_footage()
    fold.refused("CustodyTransferred", from_custodian="Somebody Else")
    assert [s["step"] for _, s in fold.custody] == [1]
    assert fold.state is not None and fold.state.footage[0].custody_steps == 1


def test_custody_mismatch() -> None:
    fold = with_footage()
    fold.add("CustodyTransferred")
    assert_refused(fold.refused("CustodyTransferred"), "CUSTODY_MISMATCH", footage_id="fp-1")


# ---------------------------------------------------------------------------- referrals


def test_referral_authority_must_be_configured() -> None:
    exc = Fold().refused("ReferralMade", authority="us_attorney")
    assert_refused(exc, "AUTHORITY_NOT_CONFIGURED", referral_id="ref-1", authority="us_attorney")
    custom = Fold(config=DomainConfig(authorities=("us_attorney",)))
    assert custom.add("ReferralMade", authority="us_attorney").referrals[0].authority == "us_attorney"


def test_acknowledgement_rules() -> None:
    fold = Fold()
    assert_refused(fold.refused("ReferralAcknowledged"), "UNKNOWN_REFERRAL", referral_id="ref-1")
    fold.add("ReferralMade")
    exc = fold.refused("ReferralAcknowledged", ctx_authority="massachusetts_ag")
    assert_refused(exc, "REFERRAL_AUTHORITY_MISMATCH", referral_id="ref-1")
    state = fold.add("ReferralAcknowledged")
    ack = state.referrals[0].acknowledgement
    assert ack is not None and (ack.note, ack.actor, ack.seq) == ("Received", "sgt-example", 2)
    exc = fold.refused("ReferralAcknowledged")
    assert_refused(exc, "REFERRAL_ALREADY_ACKNOWLEDGED", referral_id="ref-1")


# ---------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("type_name", "role"),
    [
        ("FootageReleased", "investigator"),
        ("InvestigationHoldLifted", "investigator"),
        ("CaseClosed", "investigator"),
        ("ReportReceived", "prosecutor"),
        ("ReportReceived", "auditor"),
        ("ReportReceived", "admin"),
        ("ReportReceived", "service"),
        ("EvidenceAccessed", "supervisor"),
        ("ReferralAcknowledged", "supervisor"),
        ("ReportReceived", "mayor"),
    ],
)
def test_role_not_allowed(type_name: str, role: str) -> None:
    exc = with_footage().refused(type_name, role=role)
    assert isinstance(exc, AuthorizationError)
    assert_refused(exc, "ROLE_NOT_ALLOWED", event_type=type_name)


def test_role_is_checked_before_case_state() -> None:
    exc = Fold(open_case=False).refused("CaseOpened", role="auditor")
    assert_refused(exc, "ROLE_NOT_ALLOWED", role="auditor", event_type="CaseOpened")


def test_investigator_can_open_and_document() -> None:
    fold = Fold(open_case=False)
    for type_name in (
        "CaseOpened",
        "ReportReceived",
        "IncidentDocumented",
        "FootageCaptured",
        "CustodyTransferred",
    ):
        fold.add(type_name, role="investigator")
    for type_name in ("FootageDerivativeCreated", "InvestigationHoldPlaced", "ReferralMade"):
        fold.add(type_name, role="investigator")
    assert fold.state is not None and fold.state.version == 7


# ---------------------------------------------------------------------------- state JSON


def test_state_keeps_no_narratives_or_reporter_data() -> None:
    fold = with_footage()
    fold.add("ReportReceived")
    state = fold.add("IncidentDocumented")
    text = repr(state.to_json())
    # the sealed reference (a random id) is kept, never the commitment to the reporter's data
    assert "Caller saw" not in text and "smashed" not in text and "12" * 32 not in text
    assert "Central Square" not in text
    assert state.reports[0].reporter_sealed is True
    assert state.incidents[0].federal_officials[0].face_covered is True


def test_state_json_round_trip_exact() -> None:
    fold = with_footage()
    for type_name in (
        "ReportReceived",
        "IncidentDocumented",
        "CustodyTransferred",
        "FootageDerivativeCreated",
    ):
        fold.add(type_name)
    fold.add("InvestigationHoldPlaced", scope=["fp-1"])
    fold.add("InvestigationHoldLifted")
    fold.add("FootageReleased", url="https://example.org/x")
    fold.add("ReferralMade")
    fold.add("ReferralAcknowledged")
    state = fold.add("EvidenceAccessed", footage_id=None, derivative_id="dv-1")
    data = state.to_json()
    assert data["schema"] == "case-state/2"
    assert CaseState.from_json(data) == state
    assert CaseState.from_json(data).to_json() == data
    import json

    assert CaseState.from_json(json.loads(json.dumps(data))) == state


@pytest.mark.parametrize("mutate", ["schema", "missing", "extra", "nested"])
def test_malformed_state_json_is_refused(mutate: str) -> None:
    data = with_footage().add("InvestigationHoldPlaced").to_json()
    if mutate == "schema":
        data["schema"] = "case-state/0"
    elif mutate == "missing":
        del data["summary"]
    elif mutate == "extra":
        data["timeline"] = []
    else:
        del data["holds"][0]["placed_seq"]
    with pytest.raises(MalformedInputError) as info:
        CaseState.from_json(data)
    assert info.value.code == "MALFORMED_STATE"


def test_registry_context_role_cannot_sneak_case_events() -> None:
    admin_id, _ = key(1)
    with pytest.raises(AuthorizationError):
        apply(None, ev("CaseOpened"), ctx(0, role="admin", signer=admin_id))


def test_apply_is_pure() -> None:
    fold = with_footage()
    before = fold.state
    assert before is not None
    snapshot = before.to_json()
    c = ctx(5)
    a = apply(before, ev("FootageDerivativeCreated"), c)
    b = apply(before, ev("FootageDerivativeCreated"), c)
    assert a == b and before.to_json() == snapshot and a is not before
    assert isinstance(c, EventContext)


def test_every_case_event_type_has_a_handler() -> None:
    from domain.events import CASE_EVENT_TYPES, EVENT_TYPES

    for name in CASE_EVENT_TYPES:
        effect = EVENT_TYPES[name].RULES.effect
        assert effect.__module__ in ("domain.case_lifecycle", "domain.case_evidence", "domain.case_sealed"), name
    assert {name for name in CASE_EVENT_TYPES if EVENT_TYPES[name].RULES.opens} == {"CaseOpened"}


def test_a_type_that_declares_a_custody_link_must_count_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger numbers a link's row by ``custody_steps`` after its event: a type whose effect
    forgets to count the link it declares is refused as a faulty definition, not numbered twice."""
    from dataclasses import replace

    from domain.events import EVENT_TYPES

    fold = with_footage()
    transferred = EVENT_TYPES["CustodyTransferred"]

    def forgets_the_count(state: CaseState, event: Any, ctx: EventContext, config: DomainConfig) -> CaseState:
        footage = state.footage_by_id("fp-1")
        assert footage is not None
        return state.with_footage(replace(footage, custodian=event.to_custodian))

    monkeypatch.setattr(transferred, "RULES", replace(transferred.RULES, effect=forgets_the_count))
    with pytest.raises(TypeError, match="does not count it"):
        fold.add("CustodyTransferred")
