"""The exact message of every refusal of the case rules.

The messages are user-facing: the API sends them as the problem document's ``detail`` and the CLI
prints them as its one-line reason. Each row drives one refusal and pins its code, its error class
and its message. The expected texts are written out here, not read from the code.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.case import apply
from domain.case_state import CaseState
from domain.context import REGISTRY_STREAM_ID
from domain.errors import AuthorizationError, LedgerError, MalformedInputError, RuleViolation
from domain.roles import authorize
from tests.support.domain import CASE_ID, DERIVATIVE_SHA, OTHER_SHA, Fold, ctx, ev


def with_footage() -> Fold:
    fold = Fold()
    fold.add("FootageCaptured")
    return fold


def raised(action: Callable[[], object]) -> LedgerError:
    with pytest.raises(LedgerError) as info:
        action()
    return info.value


# ---------------------------------------------------------------------------- one driver per refusal


def registry_event_on_a_case() -> LedgerError:
    return raised(lambda: apply(Fold().state, ev("KeyRegistered"), ctx(1, role="admin")))


def case_event_on_the_registry_stream() -> LedgerError:
    return raised(lambda: apply(None, ev("CaseOpened"), ctx(0, case_id=REGISTRY_STREAM_ID)))


def state_of_another_case() -> LedgerError:
    return raised(lambda: apply(Fold().state, ev("ReportReceived"), ctx(1, case_id="other-case")))


def second_opening() -> LedgerError:
    return Fold().refused("CaseOpened")


def event_before_opening() -> LedgerError:
    return Fold(open_case=False).refused("ReportReceived")


def later_event_without_an_opening() -> LedgerError:
    """A replay or a bundle that lost the case's first event: no state, at seq 3."""
    return raised(lambda: apply(None, ev("ReportReceived"), ctx(3, role="investigator")))


def event_on_a_closed_case() -> LedgerError:
    fold = Fold()
    fold.add("CaseClosed")
    return fold.refused("ReportReceived")


def reopening_an_open_case() -> LedgerError:
    return Fold().refused("CaseReopened")


def duplicate(type_name: str) -> Callable[[], LedgerError]:
    def drive() -> LedgerError:
        fold = with_footage()
        if type_name != "FootageCaptured":
            fold.add(type_name)
        return fold.refused(type_name)

    return drive


def transfer_of_unknown_footage() -> LedgerError:
    return Fold().refused("CustodyTransferred")


def transfer_from_a_former_custodian() -> LedgerError:
    fold = with_footage()
    fold.add("CustodyTransferred")
    return fold.refused("CustodyTransferred")


def lifting_an_unknown_hold() -> LedgerError:
    return with_footage().refused("InvestigationHoldLifted")


def release_of_an_unknown_derivative() -> LedgerError:
    return with_footage().refused("FootageReleased", derivative_id="dv-9", sha256=DERIVATIVE_SHA)


def access_to_an_unknown_derivative() -> LedgerError:
    return with_footage().refused("EvidenceAccessed", footage_id=None, derivative_id="dv-9")


def release_of_a_derivative_of_other_footage() -> LedgerError:
    fold = with_footage()
    fold.add("FootageCaptured", footage_id="fp-2", sha256=OTHER_SHA)
    fold.add("FootageDerivativeCreated")  # of fp-1
    return fold.refused("FootageReleased", footage_id="fp-2", derivative_id="dv-1", sha256=DERIVATIVE_SHA)


def release_with_another_sha256() -> LedgerError:
    return with_footage().refused("FootageReleased", sha256=OTHER_SHA)


def release_under_a_hold() -> LedgerError:
    fold = with_footage()
    fold.add("InvestigationHoldPlaced")
    return fold.refused("FootageReleased")


def executive_order_release_of_uncovered_footage() -> LedgerError:
    fold = Fold()
    fold.add("FootageCaptured", depicts=["other"])
    return fold.refused("FootageReleased")


def referral_to_an_unconfigured_authority() -> LedgerError:
    return Fold().refused("ReferralMade", authority="us_attorney")


def acknowledgement_of_an_unknown_referral() -> LedgerError:
    return Fold().refused("ReferralAcknowledged")


def acknowledgement_by_another_authority() -> LedgerError:
    fold = Fold()
    fold.add("ReferralMade")
    return fold.refused("ReferralAcknowledged", ctx_authority="massachusetts_ag")


def second_acknowledgement() -> LedgerError:
    fold = Fold()
    fold.add("ReferralMade")
    fold.add("ReferralAcknowledged")
    return fold.refused("ReferralAcknowledged")


def known_role_not_allowed() -> LedgerError:
    return raised(lambda: authorize("investigator", "FootageReleased"))


def unknown_role() -> LedgerError:
    return raised(lambda: authorize("mayor", "ReportReceived"))


def state_json_of_another_schema() -> LedgerError:
    data = Fold().add("ReportReceived").to_json()
    data["schema"] = "case-state/0"
    return raised(lambda: CaseState.from_json(data))


# ---------------------------------------------------------------------------- the table

ROWS: list[tuple[Callable[[], LedgerError], type[LedgerError], str, str]] = [
    (
        registry_event_on_a_case,
        RuleViolation,
        "WRONG_STREAM",
        "key registry events and case events live in different streams",
    ),
    (
        case_event_on_the_registry_stream,
        RuleViolation,
        "WRONG_STREAM",
        "key registry events and case events live in different streams",
    ),
    (state_of_another_case, RuleViolation, "CASE_MISMATCH", "the state belongs to another case"),
    (second_opening, RuleViolation, "CASE_ALREADY_OPENED", "the case is already open"),
    (
        event_before_opening,
        RuleViolation,
        "CASE_NOT_OPENED",
        f"case {CASE_ID} has no events yet (it does not exist): open it with a CaseOpened event"
        f" (evidence-ledger case new, or POST /v1/cases/{CASE_ID}/events), or check the id"
        " (evidence-ledger case list, or GET /v1/cases)",
    ),
    (later_event_without_an_opening, RuleViolation, "CASE_NOT_OPENED", "the first event of a case must be CaseOpened"),
    (event_on_a_closed_case, RuleViolation, "CASE_CLOSED",
     "the case is closed; reopen it first with a CaseReopened event (only a key of role 'supervisor' may append it)"),
    (reopening_an_open_case, RuleViolation, "CASE_NOT_CLOSED", "only a closed case can be reopened"),
    (duplicate("ReportReceived"), RuleViolation, "DUPLICATE_ID", "report_id is already used in this case"),
    (
        duplicate("IncidentDocumented"),
        RuleViolation,
        "DUPLICATE_ID",
        "incident_id is already used in this case",
    ),
    (duplicate("FootageCaptured"), RuleViolation, "DUPLICATE_ID", "footage_id is already used in this case"),
    (
        duplicate("FootageDerivativeCreated"),
        RuleViolation,
        "DUPLICATE_ID",
        "derivative_id is already used in this case",
    ),
    (
        duplicate("InvestigationHoldPlaced"),
        RuleViolation,
        "DUPLICATE_ID",
        "hold_id is already used in this case",
    ),
    (duplicate("ReferralMade"), RuleViolation, "DUPLICATE_ID", "referral_id is already used in this case"),
    (transfer_of_unknown_footage, RuleViolation, "UNKNOWN_FOOTAGE", "no footage with this id in the case"),
    (
        transfer_from_a_former_custodian,
        RuleViolation,
        "CUSTODY_MISMATCH",
        "from_custodian is not the current custodian of the footage",
    ),
    (lifting_an_unknown_hold, RuleViolation, "HOLD_NOT_ACTIVE", "no active hold with this id"),
    (
        release_of_an_unknown_derivative,
        RuleViolation,
        "UNKNOWN_DERIVATIVE",
        "no derivative with this id in the case",
    ),
    (
        access_to_an_unknown_derivative,
        RuleViolation,
        "UNKNOWN_DERIVATIVE",
        "no derivative with this id in the case",
    ),
    (
        release_of_a_derivative_of_other_footage,
        RuleViolation,
        "DERIVATIVE_PARENT_MISMATCH",
        "the derivative was made from other footage",
    ),
    (
        release_with_another_sha256,
        RuleViolation,
        "SHA256_MISMATCH",
        "sha256 does not match the recorded file",
    ),
    (
        release_under_a_hold,
        RuleViolation,
        "RELEASE_UNDER_HOLD",
        "an active investigation hold covers this footage; lift it first with an InvestigationHoldLifted event"
        " (only a key of role 'supervisor' may append it)",
    ),
    (
        executive_order_release_of_uncovered_footage,
        RuleViolation,
        "RELEASE_NOT_ELIGIBLE",
        "the executive order covers footage of violence or property damage by federal officials",
    ),
    (
        referral_to_an_unconfigured_authority,
        RuleViolation,
        "AUTHORITY_NOT_CONFIGURED",
        "referrals go only to configured authorities",
    ),
    (
        acknowledgement_of_an_unknown_referral,
        RuleViolation,
        "UNKNOWN_REFERRAL",
        "no referral with this id in the case",
    ),
    (
        acknowledgement_by_another_authority,
        RuleViolation,
        "REFERRAL_AUTHORITY_MISMATCH",
        "only the authority the case was referred to may acknowledge it",
    ),
    (
        second_acknowledgement,
        RuleViolation,
        "REFERRAL_ALREADY_ACKNOWLEDGED",
        "the referral is already acknowledged",
    ),
    (
        known_role_not_allowed,
        AuthorizationError,
        "ROLE_NOT_ALLOWED",
        "role 'investigator' may not append 'FootageReleased'; only a key of role 'supervisor' may",
    ),
    (
        unknown_role,
        AuthorizationError,
        "ROLE_NOT_ALLOWED",
        "unknown role; it may not append 'ReportReceived'; only a key of role 'investigator' or 'supervisor' may",
    ),
    (
        state_json_of_another_schema,
        MalformedInputError,
        "MALFORMED_STATE",
        "CaseState: expected an object with schema 'case-state/2'",
    ),
]


@pytest.mark.parametrize(("drive", "error", "code", "message"), ROWS, ids=[row[0].__name__ for row in ROWS])
def test_each_refusal_has_its_code_and_message(
    drive: Callable[[], LedgerError], error: type[LedgerError], code: str, message: str
) -> None:
    exc = drive()
    assert type(exc) is error
    assert (exc.code, exc.message, str(exc)) == (code, message, message)


def test_a_state_that_is_not_a_case_state_names_the_record() -> None:
    exc = raised(lambda: CaseState.from_json(["not", "an", "object"]))
    assert (exc.code, exc.refs) == ("MALFORMED_STATE", {"field": "CaseState"})
