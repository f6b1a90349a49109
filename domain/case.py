"""The Case aggregate: an immutable state and a pure ``apply`` that enforces the rules.

``apply(state, event, ctx, config)`` returns the next state or raises ``RuleViolation`` /
``AuthorizationError``. It does not check seq, prev hash or signatures (the ledger does) and never
reads a clock. The state does not keep a timeline (the ledger does): it grows with footage, holds,
releases and the like, never with every event.

Check order: stream -> role -> case exists / not yet opened -> closed -> event rules.
"""

from __future__ import annotations

from dataclasses import replace

from domain.case_evidence import EVIDENCE_HANDLERS
from domain.case_state import CaseState, Handler, refuse_duplicate, violation
from domain.context import REGISTRY_STREAM_ID, DomainConfig, EventContext
from domain.events import (
    CASE_EVENT_TYPES,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    Event,
    IncidentDocumented,
    ReportReceived,
)
from domain.records import Incident, OfficialGroup, Report
from domain.roles import authorize

__all__ = ["ALLOWED_WHEN_CLOSED", "HANDLERS", "CaseState", "apply", "replay"]

#: a closed case refuses everything else. Access logging is never refused: a download of closed
#: evidence must still leave a trace, so EvidenceAccessed is accepted on a closed case.
ALLOWED_WHEN_CLOSED: frozenset[str] = frozenset({"CaseReopened", "EvidenceAccessed"})


# ---------------------------------------------------------------------------- lifecycle


def _open(event: CaseOpened, ctx: EventContext) -> CaseState:
    return CaseState(
        case_id=ctx.case_id,
        case_number=event.case_number,
        category=event.category,
        summary=event.summary,
        status="open",
        version=ctx.seq,
        opened_at=ctx.occurred_at,
        updated_at=ctx.occurred_at,
    )


def _close(state: CaseState, event: CaseClosed, ctx: EventContext, _: DomainConfig) -> CaseState:
    return replace(state, status="closed", closed_at=ctx.occurred_at, disposition=event.disposition)


def _reopen(state: CaseState, event: CaseReopened, ctx: EventContext, _: DomainConfig) -> CaseState:
    if state.status != "closed":
        raise violation("only a closed case can be reopened", "CASE_NOT_CLOSED", case_id=state.case_id)
    return replace(
        state, status="open", closed_at=None, disposition=None, reopen_count=state.reopen_count + 1
    )


def _report(state: CaseState, event: ReportReceived, ctx: EventContext, _: DomainConfig) -> CaseState:
    refuse_duplicate(any(r.report_id == event.report_id for r in state.reports), "report_id", event.report_id)
    report = Report(
        report_id=event.report_id,
        channel=event.channel,
        received_at=event.received_at,
        observed_agency=event.observed_agency,
        reporter_sealed=event.reporter is not None,
        recorded_at=ctx.occurred_at,
        seq=ctx.seq,
    )
    return replace(state, reports=(*state.reports, report))


def _incident(state: CaseState, event: IncidentDocumented, ctx: EventContext, _: DomainConfig) -> CaseState:
    refuse_duplicate(
        any(i.incident_id == event.incident_id for i in state.incidents), "incident_id", event.incident_id
    )
    groups = tuple(
        OfficialGroup(
            agency=g.agency,
            count=g.count,
            identifiable_uniform=g.identifiable_uniform,
            face_covered=g.face_covered,
            body_camera_worn=g.body_camera_worn,
            identified_themselves=g.identified_themselves,
        )
        for g in event.federal_officials
    )
    incident = Incident(
        incident_id=event.incident_id,
        occurred_from=event.occurred_from,
        occurred_to=event.occurred_to,
        conduct=event.conduct,
        federal_officials=groups,
        recorded_at=ctx.occurred_at,
        seq=ctx.seq,
    )
    return replace(state, incidents=(*state.incidents, incident))


HANDLERS: dict[str, Handler] = {
    "CaseClosed": _close,
    "CaseReopened": _reopen,
    "ReportReceived": _report,
    "IncidentDocumented": _incident,
    **EVIDENCE_HANDLERS,
}


# ---------------------------------------------------------------------------- apply


def _check_stream(state: CaseState | None, event: Event, ctx: EventContext) -> None:
    if event.TYPE not in CASE_EVENT_TYPES or ctx.case_id == REGISTRY_STREAM_ID:
        raise violation(
            "key registry events and case events live in different streams",
            "WRONG_STREAM",
            case_id=ctx.case_id,
            event_type=event.TYPE,
        )
    if state is not None and state.case_id != ctx.case_id:
        raise violation(
            "the state belongs to another case", "CASE_MISMATCH", case_id=ctx.case_id, state=state.case_id
        )


def apply(
    state: CaseState | None, event: Event, ctx: EventContext, config: DomainConfig | None = None
) -> CaseState:
    """Validate ``event`` against ``state`` and return the next state (pure)."""
    config = config or DomainConfig()
    _check_stream(state, event, ctx)
    authorize(ctx.role, event.TYPE)
    if isinstance(event, CaseOpened):
        if state is not None:
            raise violation("the case is already open", "CASE_ALREADY_OPENED", case_id=ctx.case_id)
        return _open(event, ctx)
    if state is None:
        raise violation(
            "the first event of a case must be CaseOpened", "CASE_NOT_OPENED", case_id=ctx.case_id
        )
    if state.status == "closed" and event.TYPE not in ALLOWED_WHEN_CLOSED:
        raise violation(
            "the case is closed; reopen it first", "CASE_CLOSED", case_id=state.case_id, event_type=event.TYPE
        )
    new = HANDLERS[event.TYPE](state, event, ctx, config)
    return replace(new, version=ctx.seq, updated_at=ctx.occurred_at)


def replay(items: list[tuple[Event, EventContext]], config: DomainConfig | None = None) -> CaseState | None:
    """Fold a case's events in order (helper for tests and rebuilds)."""
    state: CaseState | None = None
    for event, ctx in items:
        state = apply(state, event, ctx, config)
    return state
