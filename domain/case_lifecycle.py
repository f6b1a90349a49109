"""The effects of the lifecycle and record events of a case: open, close, reopen, reports, incidents.

Each effect is named by its event type's declaration (``Rules.effect`` in :mod:`domain.events`) and
called by :func:`domain.case.apply` after the checks every case event shares (stream, role, case
opened, closed case). The event types are imported for annotations only: :mod:`domain.events`
imports this module.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from domain.case_state import CaseState, refuse_duplicate, violation
from domain.context import DomainConfig, EventContext
from domain.records import Incident, OfficialGroup, Report, SealedRecordRef

if TYPE_CHECKING:
    from domain.events import CaseClosed, CaseOpened, CaseReopened, IncidentDocumented, ReportReceived


def open_case(_state: None, event: CaseOpened, ctx: EventContext, _: DomainConfig) -> CaseState:
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


def close(state: CaseState, event: CaseClosed, ctx: EventContext, _: DomainConfig) -> CaseState:
    return replace(state, status="closed", closed_at=ctx.occurred_at, disposition=event.disposition)


def reopen(state: CaseState, event: CaseReopened, ctx: EventContext, _: DomainConfig) -> CaseState:
    if state.status != "closed":
        raise violation("only a closed case can be reopened", "CASE_NOT_CLOSED", case_id=state.case_id)
    return replace(
        state, status="open", closed_at=None, disposition=None, reopen_count=state.reopen_count + 1
    )


def record_report(state: CaseState, event: ReportReceived, ctx: EventContext, _: DomainConfig) -> CaseState:
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
    sealed = state.sealed
    if event.reporter is not None:
        ref = event.reporter.sealed_ref
        known = state.sealed_by_ref(ref)
        if known is not None and known.shredded:
            raise violation("the sealed record was shredded", "SHREDDED", sealed_ref=ref)
        if known is None:
            sealed = (*sealed, SealedRecordRef(sealed_ref=ref, report_id=event.report_id, seq=ctx.seq))
    return replace(state, reports=(*state.reports, report), sealed=sealed)


def record_incident(
    state: CaseState, event: IncidentDocumented, ctx: EventContext, _: DomainConfig
) -> CaseState:
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
