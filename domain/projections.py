"""Pure read-model views of a case: the case view, the public release log, timeline lines.

``release_status`` of a footage, by priority:

* ``released``    - the footage or one of its derivatives was released (a release is a public,
  historical fact: a hold placed afterwards does not un-release it);
* ``held``        - an active investigation hold covers it;
* ``eligible``    - it depicts violence or property damage by federal officials: the executive
  order promises its release;
* ``not_covered`` - otherwise.

No view contains narratives, locations or reporter data (the case state does not hold them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.case_evidence import is_depicting_federal_misconduct
from domain.case_state import CaseState
from domain.context import EventContext
from domain.events import Event
from domain.records import Footage, Hold, Release

RELEASE_STATUSES = ("released", "held", "eligible", "not_covered")


def release_status(state: CaseState, footage: Footage) -> str:
    if state.releases_of(footage.footage_id):
        return "released"
    if state.active_holds_covering(footage.footage_id):
        return "held"
    if is_depicting_federal_misconduct(footage):
        return "eligible"
    return "not_covered"


def _release_json(release: Release) -> dict[str, Any]:
    return {
        "footage_id": release.footage_id,
        "derivative_id": release.derivative_id,
        "sha256": release.sha256,
        "basis": release.basis,
        "channel": release.channel,
        "url": release.url,
        "released_at": release.at,
        "seq": release.seq,
    }


def _hold_json(hold: Hold) -> dict[str, Any]:
    return {
        "hold_id": hold.hold_id,
        "scope": hold.scope if hold.scope == "case" else list(hold.scope),
        "authority": hold.authority,
        "active": hold.active,
        "placed_at": hold.placed_at,
        "lifted_at": hold.lifted_at,
    }


def _footage_json(state: CaseState, footage: Footage) -> dict[str, Any]:
    view = footage.to_json()
    view["release_status"] = release_status(state, footage)
    view["held_by"] = [h.hold_id for h in state.active_holds_covering(footage.footage_id)]
    return view


def case_view(state: CaseState) -> dict[str, Any]:
    """The JSON projection served for a case (internal roles)."""
    return {
        "case_id": state.case_id,
        "case_number": state.case_number,
        "category": state.category,
        "summary": state.summary,
        "status": state.status,
        "version": state.version,
        "opened_at": state.opened_at,
        "updated_at": state.updated_at,
        "closed_at": state.closed_at,
        "disposition": state.disposition,
        "reopen_count": state.reopen_count,
        "footage": [_footage_json(state, f) for f in state.footage],
        "holds": [_hold_json(h) for h in state.holds],
        "active_holds": [h.hold_id for h in state.holds if h.active],
        "releases": [_release_json(r) for r in state.releases],
        "referrals": [r.to_json() for r in state.referrals],
        "reports": [r.to_json() for r in state.reports],
        "incidents": [i.to_json() for i in state.incidents],
        "accesses": state.accesses,
    }


def public_release_entries(state: CaseState) -> list[dict[str, Any]]:
    """What the public release log shows for this case: released or eligible footage only.

    No narratives, locations, reporters, custodians, device ids or holds.
    """
    entries: list[dict[str, Any]] = []
    for footage in state.footage:
        status = release_status(state, footage)
        if status not in ("released", "eligible"):
            continue
        releases = [
            {k: v for k, v in _release_json(r).items() if k != "seq"}
            for r in state.releases_of(footage.footage_id)
        ]
        entries.append(
            {
                "footage_id": footage.footage_id,
                "case_number": state.case_number,
                "source": footage.source,
                "recorded_from": footage.recorded_from,
                "recorded_to": footage.recorded_to,
                "depicts": list(footage.depicts),
                "status": status,
                "release": releases[-1] if releases else None,
                "releases": releases,
            }
        )
    return entries


# ---------------------------------------------------------------------------- timeline


def _ids(body: dict[str, object], *names: str) -> dict[str, object]:
    return {n: body[n] for n in names if body.get(n) is not None}


_REFS: dict[str, tuple[str, ...]] = {
    "CaseOpened": ("case_number", "category"),
    "ReportReceived": ("report_id", "channel"),
    "IncidentDocumented": ("incident_id",),
    "FootageCaptured": ("footage_id", "source"),
    "CustodyTransferred": ("footage_id",),
    "FootageDerivativeCreated": ("derivative_id", "footage_id", "kind"),
    "InvestigationHoldPlaced": ("hold_id", "authority"),
    "InvestigationHoldLifted": ("hold_id",),
    "FootageReleased": ("footage_id", "derivative_id", "basis"),
    "ReferralMade": ("referral_id", "authority"),
    "ReferralAcknowledged": ("referral_id",),
    "EvidenceAccessed": ("footage_id", "derivative_id"),
    "KeyRegistered": ("key_id", "role"),
    "KeyRevoked": ("key_id",),
}


def _scope_label(scope: object) -> str:
    return "whole case" if scope == "case" else f"{len(scope) if isinstance(scope, list) else 0} footage"


_LABELS: dict[str, Callable[[dict[str, Any]], str]] = {
    "CaseOpened": lambda b: f"Case {b['case_number']} opened ({b['category']})",
    "ReportReceived": lambda b: f"Report {b['report_id']} received ({b['channel']})",
    "IncidentDocumented": lambda b: f"Incident {b['incident_id']} documented ({', '.join(b['conduct'])})",
    "FootageCaptured": lambda b: f"Footage {b['footage_id']} captured ({b['source']})",
    "CustodyTransferred": lambda b: f"Custody of footage {b['footage_id']} transferred",
    "FootageDerivativeCreated": lambda b: (
        f"Derivative {b['derivative_id']} ({b['kind']}) created from footage {b['footage_id']}"
    ),
    "InvestigationHoldPlaced": lambda b: (
        f"Investigation hold {b['hold_id']} placed by {b['authority']} ({_scope_label(b['scope'])})"
    ),
    "InvestigationHoldLifted": lambda b: f"Investigation hold {b['hold_id']} lifted",
    "FootageReleased": lambda b: (
        f"Footage {b['footage_id']} released ({b['basis']})"
        if b.get("derivative_id") is None
        else f"Derivative {b['derivative_id']} of footage {b['footage_id']} released ({b['basis']})"
    ),
    "ReferralMade": lambda b: f"Referral {b['referral_id']} made to {b['authority']}",
    "ReferralAcknowledged": lambda b: f"Referral {b['referral_id']} acknowledged",
    "CaseClosed": lambda b: "Case closed",
    "CaseReopened": lambda b: "Case reopened",
    "EvidenceAccessed": lambda b: (
        f"Footage {b['footage_id']} accessed"
        if b.get("footage_id") is not None
        else f"Derivative {b['derivative_id']} accessed"
    ),
    "KeyRegistered": lambda b: f"Key {b['key_id'][:16]} registered ({b['role']})",
    "KeyRevoked": lambda b: f"Key {b['key_id'][:16]} revoked",
}


def timeline_entry(event: Event, ctx: EventContext) -> dict[str, Any]:
    """One non-personal line of the case timeline (ids and enums only, never free text)."""
    body = event.to_body()
    return {
        "seq": ctx.seq,
        "type": event.TYPE,
        "occurred_at": ctx.occurred_at,
        "actor": ctx.actor,
        "role": ctx.role,
        "leaf_index": ctx.leaf_index,
        "label": _LABELS[event.TYPE](body),
        "refs": _ids(body, *_REFS.get(event.TYPE, ())),
    }
