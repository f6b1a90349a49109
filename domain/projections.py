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

from collections.abc import Mapping
from typing import Any

from domain.case_evidence import is_depicting_federal_misconduct
from domain.case_state import CaseState
from domain.context import EventContext
from domain.events import Event, rules_of, unknown_type
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


# ---------------------------------------------------------------------------- verification reports


def _pick(item: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {n: item[n] for n in names}


def _referral_summary(referral: Mapping[str, Any]) -> dict[str, Any]:
    ack = referral["acknowledgement"]
    return {
        **_pick(referral, "referral_id", "authority", "made_at", "seq", "bundle_sha256"),
        "acknowledged_at": None if ack is None else ack["at"],
        "acknowledged_by": None if ack is None else ack["actor"],
    }


def summarize(view: Mapping[str, Any]) -> dict[str, Any]:
    """What a verification report shows of a case view (:func:`case_view`): ids, enums, hashes and
    times only (no summary, disposition, referral basis, acknowledgement note, custody purposes or
    custodians: free text stays in the signed events). The selection is the report format
    (``evidence-ledger-verification/2``); every value is the view's."""
    footage_fields = ("footage_id", "source", "sha256", "size_bytes", "media_type", "depicts", "stored")
    return {
        **_pick(
            view, "case_number", "category", "status", "version", "opened_at", "closed_at", "reopen_count"
        ),
        "footage": [
            {
                **_pick(f, *footage_fields, "captured_at", "release_status", "held_by"),
                "derivatives": [
                    _pick(d, "derivative_id", "kind", "sha256", "created_at") for d in f["derivatives"]
                ],
                "accesses": f["accesses"],
            }
            for f in view["footage"]
        ],
        "holds": [
            _pick(h, "hold_id", "authority", "scope", "active", "placed_at", "lifted_at")
            for h in view["holds"]
        ],
        "active_holds": view["active_holds"],
        "releases": [
            _pick(r, "footage_id", "derivative_id", "sha256", "basis", "url", "released_at", "seq")
            for r in view["releases"]
        ],
        "referrals": [_referral_summary(r) for r in view["referrals"]],
        "accesses": view["accesses"],
    }


def case_summary(state: CaseState) -> dict[str, Any]:
    """The case as the offline verifier reports it: :func:`summarize` of :func:`case_view`, the same
    projection the service stores, so the two cannot disagree about a case."""
    return summarize(case_view(state))


# ---------------------------------------------------------------------------- timeline


def _ids(body: dict[str, object], names: tuple[str, ...]) -> dict[str, object]:
    return {n: body[n] for n in names if body.get(n) is not None}


def timeline_entry(event: Event, ctx: EventContext) -> dict[str, Any]:
    """One non-personal line of the case timeline (ids and enums only, never free text): the label
    and the ids its type declares (``Rules.label``, ``Rules.refs``)."""
    rules = rules_of(event)
    if rules is None:
        raise unknown_type(event.TYPE, event.VERSION)
    body = event.to_body()
    return {
        "seq": ctx.seq,
        "type": event.TYPE,
        "occurred_at": ctx.occurred_at,
        "actor": ctx.actor,
        "role": ctx.role,
        "leaf_index": ctx.leaf_index,
        "label": rules.label(body),
        "refs": _ids(body, rules.refs),
    }
