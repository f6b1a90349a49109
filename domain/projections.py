"""Pure read-model views of a case: the case view, the public release log and statistics, timeline lines.

``release_status`` of a footage, by priority:

* ``released``    - the footage or one of its derivatives was released (a release is a public,
  historical fact: a hold placed afterwards does not un-release it);
* ``held``        - an active investigation hold covers it;
* ``eligible``    - it depicts violence or property damage by federal officials: the executive
  order promises its release;
* ``not_covered`` - otherwise.

No view contains narratives, locations or reporter data (the case state does not hold them). The
public views (:func:`public_release_entries`, :func:`monthly_statistics`) say nothing about an
unreleased item: see ``docs/design.md`` "What the public sees".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from domain.case_evidence import is_depicting_federal_misconduct
from domain.case_state import CaseState
from domain.context import EventContext
from domain.errors import MalformedInputError
from domain.events import Event, custody_link, rules_of, unknown_type
from domain.fields import timestamp_key
from domain.records import CustodyStep, Footage, Hold, Release

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


#: where the service serves a footage item's chain of custody, page by page (the case view links it)
CUSTODY_PATH = "/v1/cases/{case_id}/footage/{footage_id}/custody"


def custody_href(case_id: str, footage_id: str) -> str:
    """The path of a footage item's chain of custody. An id made of dots only (``.``, ``..``) is
    percent-encoded, so that no client takes it for a dot-segment of the path."""
    segment = footage_id if footage_id.strip(".") else footage_id.replace(".", "%2E")
    return CUSTODY_PATH.format(case_id=case_id, footage_id=segment)


def _footage_json(state: CaseState, footage: Footage) -> dict[str, Any]:
    view = footage.to_json()
    # The chain itself is served page by page: the view has its length and where to read it.
    view["custody"] = {"steps": view.pop("custody_steps"), "href": custody_href(state.case_id, footage.footage_id)}
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
        "sealed": [s.to_json() for s in state.sealed],
        "disclosures": [d.to_json() for d in state.disclosures],
        "disclosure_refusals": state.disclosure_refusals,
    }


def public_release_entries(state: CaseState, footage_id: str | None = None) -> list[dict[str, Any]]:
    """What the public release log shows for this case: one entry per release, and only what the
    supervisor's signed release decision says (the released file's SHA-256, time, basis, channel,
    URL). Nothing from the capture (ids, case number, source, device, recording times, what it
    depicts) and nothing about footage that was not released: an unreleased item, held or not, has
    no entry, so placing or lifting a hold never changes this list. A release is never undone (no
    event withdraws one), so an entry, once made, stays. ``footage_id``: the releases of that
    footage (or of its derivatives) only.
    """
    releases = state.releases if footage_id is None else state.releases_of(footage_id)
    return sorted(
        (
            {"sha256": r.sha256, "released_at": r.at, "basis": r.basis, "channel": r.channel, "url": r.url}
            for r in releases
        ),
        key=public_release_order,
    )


def public_release_order(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """The public list's order: a function of the entries' own fields only."""
    return (timestamp_key(entry["released_at"]), entry["sha256"], entry["basis"], entry["channel"], entry["url"] or "")


#: a page cursor of the public release list: ``<released_at>_<sha256>_<n>``, the last entry served
#: (its time and file) and how many entries with that same time and file were served up to it
PUBLIC_CURSOR_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z_[0-9a-f]{64}_[1-9][0-9]{0,8}$"
_PUBLIC_CURSOR = re.compile(PUBLIC_CURSOR_PATTERN)


def public_release_page(
    entries: list[dict[str, Any]], *, after: str | None, limit: int
) -> dict[str, Any]:
    """One page ``{items, next}`` of the public release list ``entries`` (in
    :func:`public_release_order`): the entries after the cursor ``after`` (None: from the first),
    at most ``limit``; ``next`` is the cursor of the last one served, or None when none follow.

    The cursor names a position by the entries' own fields (keyset pagination), not by a count
    from the start, so a release recorded between two requests never shifts a page. Raises
    MalformedInputError (BAD_CURSOR) for a cursor that is not one."""
    start = 0
    if after is not None:
        if _PUBLIC_CURSOR.fullmatch(after) is None:
            raise MalformedInputError("not a cursor of this list (pass a `next` it returned)", code="BAD_CURSOR")
        released_at, sha256, count = after.split("_")
        try:
            mark = (timestamp_key(released_at), sha256)
        except (MalformedInputError, ValueError):  # not a timestamp, or no such date
            raise MalformedInputError("not a cursor of this list (pass a `next` it returned)",
                                      code="BAD_CURSOR") from None
        while start < len(entries) and _group(entries[start]) < mark:
            start += 1
        skip = int(count)
        while skip and start < len(entries) and _group(entries[start]) == mark:
            start, skip = start + 1, skip - 1
    items = entries[start:start + limit]
    if not items or start + len(items) >= len(entries):
        return {"items": items, "next": None}
    last = items[-1]
    end = start + len(items)
    same = 0
    while end - same - 1 >= 0 and _group(entries[end - same - 1]) == _group(last):
        same += 1
    return {"items": items, "next": f"{last['released_at']}_{last['sha256']}_{same}"}


def _group(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return timestamp_key(entry["released_at"]), entry["sha256"]


# ---------------------------------------------------------------------------- public statistics

#: the statuses the public statistics count, in their order
STATISTICS_STATUSES = ("released", "withheld_under_investigation", "awaiting_decision")
MONTH_RE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def statistics_entries(state: CaseState) -> list[dict[str, Any]]:
    """What the public statistics need of each footage of this case, and nothing else (no ids):
    when it was captured, its first release, and the periods of the holds that ever covered it.
    Never served as is; only :func:`monthly_statistics` reads it."""
    entries = []
    for footage in state.footage:
        releases = sorted((r.at for r in state.releases_of(footage.footage_id)), key=timestamp_key)
        holds = [[h.placed_at, h.lifted_at] for h in state.holds if h.scope == "case" or footage.footage_id in h.scope]
        entries.append(
            {"captured_at": footage.captured_at, "released_at": releases[0] if releases else None, "held": holds}
        )
    return sorted(entries, key=lambda e: json.dumps(e, sort_keys=True))


def _month_index(month: str) -> int:
    match = MONTH_RE.fullmatch(month)
    if match is None:
        raise MalformedInputError("month: expected YYYY-MM", code="INVALID_MONTH", field="month")
    return int(match.group(1)) * 12 + int(match.group(2)) - 1


def _month_start(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def status_at(entry: Mapping[str, Any], cutoff: datetime) -> str:
    """The status of one footage (a :func:`statistics_entries` item) at the instant ``cutoff``:
    released before it, else under a hold placed before it and not lifted before it, else awaiting
    a decision."""
    before = (cutoff, 0)
    if entry["released_at"] is not None and timestamp_key(entry["released_at"]) < before:
        return "released"
    for placed, lifted in entry["held"]:
        if timestamp_key(placed) < before and (lifted is None or timestamp_key(lifted) >= before):
            return "withheld_under_investigation"
    return "awaiting_decision"


def _range(count: int, bucket: int) -> dict[str, int]:
    low = count - count % bucket
    return {"at_least": low, "at_most": low + bucket - 1}


def monthly_statistics(
    entries: Iterable[Mapping[str, Any]], *, at: datetime, since: str, lag_months: int, bucket: int
) -> list[dict[str, Any]]:
    """Public monthly counts of footage by the month of its capture (UTC), from month ``since`` on.

    A month appears only once it is closed: its counts describe each footage captured in it by its
    status at the *cutoff*, the first instant of the month ``lag_months`` after the next one, and a
    month is shown only when the time ``at`` (the caller's clock) has reached its cutoff. What happens after the cutoff (a hold,
    a lift, a release) never changes a shown month, and the current month is never shown. Every
    count is given as the range of width ``bucket`` it falls in (``at_least`` = the count rounded
    down to a multiple of ``bucket``): fewer than ``bucket`` — including none — all read
    ``0..bucket-1``. No totals are given (they would undo the rounding). Captures before ``since``
    are not counted."""
    if lag_months < 0 or bucket < 2:
        raise MalformedInputError(
            "public statistics: expected lag_months >= 0 and bucket >= 2", code="INVALID_STATISTICS_SETTINGS"
        )
    first = _month_index(since)
    current = at.year * 12 + at.month - 1
    last = current - 1 - lag_months  # the newest month whose cutoff has passed
    counts: dict[int, dict[str, int]] = {m: dict.fromkeys(STATISTICS_STATUSES, 0) for m in range(first, last + 1)}
    for entry in entries:
        month = _month_index(entry["captured_at"][:7])
        if month in counts:
            counts[month][status_at(entry, _month_start(month + 1 + lag_months))] += 1
    return [
        {
            "month": f"{m // 12:04d}-{m % 12 + 1:02d}",
            "as_of": _month_start(m + 1 + lag_months).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **{status: _range(counts[m][status], bucket) for status in STATISTICS_STATUSES},
        }
        for m in sorted(counts)
    ]


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


def custody_entry(event: Event, ctx: EventContext) -> tuple[str, dict[str, Any]] | None:
    """(footage id, link) of the link ``event`` adds to a footage item's chain of custody (its type's
    ``Rules.custody``), None for any other event. The link is what the chain used to hold in the
    state, plus the leaf index of its event; the ledger stores it as a row of its own, numbered by
    ``Footage.custody_steps`` after the event (the first link is 1)."""
    link = custody_link(event)
    if link is None:
        return None
    footage_id, from_custodian, to_custodian, purpose = link
    step = CustodyStep(
        from_custodian=from_custodian, to_custodian=to_custodian, purpose=purpose, at=ctx.occurred_at, seq=ctx.seq
    )
    return footage_id, {**step.to_json(), "leaf_index": ctx.leaf_index}


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
