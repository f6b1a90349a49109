"""Rules for sealed records in a case: two-person disclosure, refusals on record, shredding.

A sealed record enters a case with the report that names it (``ReportReceived.reporter``,
:func:`domain.case_lifecycle.record_report`). From then on:

* a disclosure is *requested* (by an investigator, supervisor or counsel) for a record of the case
  that is not shredded;
* it is *approved* by another person (supervisor or counsel) within the disclosure window of the
  request (``DomainConfig.disclosure_window_seconds``, 24 hours by default);
* the requester *discloses* it, once, still inside the window, naming every approver; only then
  does the ledger unseal the record, for that caller;
* every refused attempt is recorded by the service (``SealedDisclosureRefused``), which never
  refuses;
* a record is *shredded* (its key destroyed) unless an active investigation hold or an
  unacknowledged referral covers the case.

Times are the signed statement times (``ctx.occurred_at``); the ledger refuses disclosure
statements signed too long before they arrive, so the window cannot be stretched by back-dating.
The event types are imported for annotations only: :mod:`domain.events` imports this module.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from domain.case_state import CaseState, refuse_duplicate, violation
from domain.context import DomainConfig, EventContext
from domain.errors import RuleViolation
from domain.fields import timestamp_key
from domain.records import Approval, DisclosureRequest, SealedRecordRef

if TYPE_CHECKING:
    from domain.events import (
        SealedDisclosureApproved,
        SealedDisclosureRefused,
        SealedDisclosureRequested,
        SealedRecordDisclosed,
        SealedRecordShredded,
    )


def within_window(start: str, at: str, seconds: int) -> bool:
    """True when ``at`` is no later than ``seconds`` after ``start`` (exact to the nanosecond)."""
    begin, nanos = timestamp_key(start)
    end, end_nanos = timestamp_key(at)
    # compared as a difference: ``begin + window`` overflows past the year 9999 (a signed request dated
    # on its last day would crash the replay instead of being judged)
    return (end - begin, end_nanos) <= (timedelta(seconds=seconds), nanos)


def require_sealed(state: CaseState, sealed_ref: str) -> SealedRecordRef:
    """The case's sealed record ``sealed_ref``; refused when it is not the case's or is shredded."""
    record = state.sealed_by_ref(sealed_ref)
    if record is None:
        raise violation(
            "no sealed record with this reference in the case", "SEALED_REF_NOT_IN_CASE", sealed_ref=sealed_ref
        )
    if record.shredded:
        raise violation("the sealed record was shredded", "SHREDDED", sealed_ref=sealed_ref)
    return record


def _open_request(state: CaseState, request_id: str) -> DisclosureRequest:
    request = state.disclosure_by_id(request_id)
    if request is None:
        raise violation(
            "no disclosure request with this id in the case", "UNKNOWN_DISCLOSURE_REQUEST", request_id=request_id
        )
    require_sealed(state, request.sealed_ref)
    if request.disclosed_seq is not None:
        raise violation(
            "the record was already disclosed for this request", "DISCLOSURE_ALREADY_MADE", request_id=request_id
        )
    return request


def _swap(state: CaseState, request: DisclosureRequest) -> CaseState:
    items = tuple(request if d.request_id == request.request_id else d for d in state.disclosures)
    return replace(state, disclosures=items)


def request_disclosure(
    state: CaseState, e: SealedDisclosureRequested, ctx: EventContext, _: DomainConfig
) -> CaseState:
    refuse_duplicate(state.disclosure_by_id(e.request_id) is not None, "request_id", e.request_id)
    require_sealed(state, e.sealed_ref)
    request = DisclosureRequest(
        request_id=e.request_id,
        sealed_ref=e.sealed_ref,
        requester=ctx.actor,
        requester_role=ctx.role,
        requested_at=ctx.occurred_at,
        seq=ctx.seq,
    )
    return replace(state, disclosures=(*state.disclosures, request))


def approve_disclosure(
    state: CaseState, e: SealedDisclosureApproved, ctx: EventContext, config: DomainConfig
) -> CaseState:
    request = _open_request(state, e.request_id)
    if ctx.actor == request.requester:
        raise violation(
            "a disclosure must be approved by another person than the one who asked",
            "SAME_PERSON",
            request_id=e.request_id,
        )
    if any(a.actor == ctx.actor for a in request.approvals):
        raise violation("this person already approved the request", "ALREADY_APPROVED", request_id=e.request_id)
    if not within_window(request.requested_at, ctx.occurred_at, config.disclosure_window_seconds):
        raise violation(
            "the request is older than the disclosure window; ask again", "REQUEST_EXPIRED", request_id=e.request_id
        )
    approval = Approval(actor=ctx.actor, role=ctx.role, at=ctx.occurred_at, seq=ctx.seq)
    return _swap(state, replace(request, approvals=(*request.approvals, approval)))


def disclose(state: CaseState, e: SealedRecordDisclosed, ctx: EventContext, config: DomainConfig) -> CaseState:
    request = _open_request(state, e.request_id)
    if e.sealed_ref != request.sealed_ref:
        raise violation(
            "the request is for another sealed record", "SEALED_REF_MISMATCH", request_id=e.request_id
        )
    if ctx.actor != request.requester:
        raise violation(
            "only the person who asked may disclose the record", "DISCLOSER_NOT_REQUESTER", request_id=e.request_id
        )
    if not request.approvals:
        raise violation(
            "the request has no approval by another person", "DISCLOSURE_NOT_APPROVED", request_id=e.request_id
        )
    if not within_window(request.requested_at, ctx.occurred_at, config.disclosure_window_seconds):
        raise violation(
            "the approval expired with the disclosure window; ask again", "APPROVAL_EXPIRED", request_id=e.request_id
        )
    if sorted(e.approvers) != sorted(a.actor for a in request.approvals):
        raise violation(
            "approvers must name exactly the people who approved the request",
            "APPROVERS_MISMATCH",
            request_id=e.request_id,
        )
    return _swap(state, replace(request, disclosed_at=ctx.occurred_at, disclosed_seq=ctx.seq))


def record_refusal(
    state: CaseState, e: SealedDisclosureRefused, ctx: EventContext, _: DomainConfig
) -> CaseState:
    """A refused attempt is a fact on record: never refused itself."""
    return replace(state, disclosure_refusals=state.disclosure_refusals + 1)


def shred(state: CaseState, e: SealedRecordShredded, ctx: EventContext, _: DomainConfig) -> CaseState:
    record = require_sealed(state, e.sealed_ref)
    hold = next((h.hold_id for h in state.holds if h.active), None)
    pending = next((r.referral_id for r in state.referrals if r.acknowledgement is None), None)
    if hold is not None:
        raise _blocked(e.sealed_ref, hold_id=hold)
    if pending is not None:
        raise _blocked(e.sealed_ref, referral_id=pending)
    shredded = replace(record, shredded=True, shredded_at=ctx.occurred_at, shredded_seq=ctx.seq)
    items = tuple(shredded if s.sealed_ref == e.sealed_ref else s for s in state.sealed)
    return replace(state, sealed=items)


def _blocked(sealed_ref: str, **blocker: str) -> RuleViolation:
    return violation(
        "an active investigation hold or an unacknowledged referral covers the case",
        "SHRED_BLOCKED_BY_HOLD",
        sealed_ref=sealed_ref,
        **blocker,
    )
