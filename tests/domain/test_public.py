"""What the public sees: the release list and the monthly statistics, as pure functions of a history.

The property tests fold random histories (captures, holds, lifts, releases at increasing times over
several months) and check the public output against an oracle that knows only the releases and, per
closed month, the bucketed counts of the captures' statuses at the cutoff (found by re-folding the
history up to that instant and asking ``release_status``): nothing else can reach the output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.case import CaseState, apply
from domain.errors import LedgerError, MalformedInputError
from domain.events import Event
from domain.projections import (
    STATISTICS_STATUSES,
    monthly_statistics,
    public_release_entries,
    public_release_order,
    release_status,
    statistics_entries,
    status_at,
)
from tests.support.domain import FOOTAGE_SHA, OTHER_SHA, ROLE_FOR, ctx, ev

START = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def entry(captured: str, released: str | None = None, *held: tuple[str, str | None]) -> dict[str, Any]:
    return {"captured_at": captured, "released_at": released, "held": [list(h) for h in held]}


# --- statuses at a cutoff, months, buckets ------------------------------------------------------------


def test_status_at_a_cutoff_counts_only_what_happened_before_it() -> None:
    cutoff = at("2026-03-01T00:00:00Z")
    assert status_at(entry("2026-01-05T10:00:00Z"), cutoff) == "awaiting_decision"
    assert status_at(entry("2026-01-05T10:00:00Z", "2026-02-28T23:59:59.999Z"), cutoff) == "released"
    assert status_at(entry("2026-01-05T10:00:00Z", "2026-03-01T00:00:00Z"), cutoff) == "awaiting_decision"
    held = ("2026-01-06T00:00:00Z", None)
    assert status_at(entry("2026-01-05T10:00:00Z", None, held), cutoff) == "withheld_under_investigation"
    lifted = ("2026-01-06T00:00:00Z", "2026-02-01T00:00:00Z")
    assert status_at(entry("2026-01-05T10:00:00Z", None, lifted), cutoff) == "awaiting_decision"
    lifted_later = ("2026-01-06T00:00:00Z", "2026-03-01T00:00:00Z")
    assert status_at(entry("2026-01-05T10:00:00Z", None, lifted_later), cutoff) == "withheld_under_investigation"
    placed_later = ("2026-03-02T00:00:00Z", None)
    assert status_at(entry("2026-01-05T10:00:00Z", None, placed_later), cutoff) == "awaiting_decision"
    # released before the cutoff wins over a hold placed after the release
    assert status_at(entry("2026-01-05T10:00:00Z", "2026-01-07T00:00:00Z", held), cutoff) == "released"


def test_only_months_whose_cutoff_passed_are_shown_and_counts_are_ranges() -> None:
    entries = [entry(f"2026-01-{day:02d}T08:00:00Z") for day in range(1, 8)]  # 7 awaiting in January
    entries.append(entry("2026-01-09T08:00:00Z", "2026-01-10T08:00:00Z"))  # 1 released
    entries.append(entry("2026-02-03T08:00:00Z"))  # February: not closed yet below
    # lag 1: January's cutoff is 2026-03-01
    assert monthly_statistics(entries, at=at("2026-02-28T23:59:59Z"), since="2026-01", lag_months=1, bucket=5) == []
    shown = monthly_statistics(entries, at=at("2026-03-01T00:00:00Z"), since="2026-01", lag_months=1, bucket=5)
    assert shown == [
        {
            "month": "2026-01",
            "as_of": "2026-03-01T00:00:00Z",
            "released": {"at_least": 0, "at_most": 4},
            "withheld_under_investigation": {"at_least": 0, "at_most": 4},
            "awaiting_decision": {"at_least": 5, "at_most": 9},
        }
    ]
    # lag 0: a month is shown once it has ended, never the current one
    shown = monthly_statistics(entries, at=at("2026-03-15T00:00:00Z"), since="2025-12", lag_months=0, bucket=5)
    assert [m["month"] for m in shown] == ["2025-12", "2026-01", "2026-02"]
    assert shown[0]["awaiting_decision"] == {"at_least": 0, "at_most": 4}  # an empty month reads like 1 to 4
    assert [m["as_of"] for m in shown] == ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]
    # captures before `since` are not counted anywhere; a wider bucket
    shown = monthly_statistics(entries, at=at("2026-03-15T00:00:00Z"), since="2026-02", lag_months=0, bucket=10)
    assert [m["month"] for m in shown] == ["2026-02"]
    assert shown[0]["awaiting_decision"] == {"at_least": 0, "at_most": 9}


def test_months_roll_over_the_year_and_bad_settings_are_refused() -> None:
    shown = monthly_statistics([], at=at("2027-02-01T00:00:00Z"), since="2026-11", lag_months=1, bucket=5)
    assert [(m["month"], m["as_of"]) for m in shown] == [
        ("2026-11", "2027-01-01T00:00:00Z"),
        ("2026-12", "2027-02-01T00:00:00Z"),
    ]
    for bad in ({"lag_months": -1, "bucket": 5}, {"lag_months": 0, "bucket": 1}):
        with pytest.raises(MalformedInputError):
            monthly_statistics([], at=START, since="2026-01", **bad)
    with pytest.raises(MalformedInputError) as refused:
        monthly_statistics([], at=START, since="2026-13", lag_months=0, bucket=5)
    assert refused.value.code == "INVALID_MONTH" and "2026-13" not in refused.value.message


# --- random histories ---------------------------------------------------------------------------------

FOOTAGE = ("fp-1", "fp-2", "fp-3", "fp-4", "fp-5", "fp-6")
HOLDS = ("h-1", "h-2")

ACTION = st.one_of(
    st.tuples(st.just("FootageCaptured"), st.sampled_from(FOOTAGE)),
    st.tuples(st.just("FootageCaptured"), st.sampled_from(FOOTAGE)),
    st.tuples(st.just("FootageReleased"), st.sampled_from(FOOTAGE)),
    st.tuples(st.just("InvestigationHoldPlaced"), st.sampled_from(HOLDS)),
    st.tuples(st.just("InvestigationHoldLifted"), st.sampled_from(HOLDS)),
)
#: (case, action, scope choice, days after the previous step, hours)
STEP = st.tuples(
    st.integers(0, 2), ACTION, st.sampled_from(["case", "one"]), st.integers(0, 12), st.integers(0, 23)
)
CASES = ("00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b", "00000000-0000-4000-8000-00000000000c")
BUCKET = 2


def body_for(action: tuple[str, str], scope: str) -> dict[str, Any]:
    kind, target = action
    if kind == "FootageCaptured":
        depicts = ["other"] if target == "fp-4" else ["violence_by_federal_officials"]
        return {"footage_id": target, "sha256": OTHER_SHA if target == "fp-4" else FOOTAGE_SHA, "depicts": depicts}
    if kind == "FootageReleased":
        sha = OTHER_SHA if target == "fp-4" else FOOTAGE_SHA
        basis = "public_records_request" if target == "fp-4" else "executive_order"
        return {"footage_id": target, "sha256": sha, "basis": basis, "channel": f"channel-{target}"}
    if kind == "InvestigationHoldPlaced":
        return {"hold_id": target, "scope": "case" if scope == "case" else ["fp-1"]}
    return {"hold_id": target}


@dataclass
class Case:
    state: CaseState
    accepted: list[tuple[Event, Any]]


def open_case(case_id: str) -> Case:
    c = ctx(0, case_id=case_id, at=stamp(START))
    opened = ev("CaseOpened")
    return Case(apply(None, opened, c), [(opened, c)])


def append(case: Case, kind: str, body: dict[str, Any], moment: datetime) -> bool:
    event = ev(kind, **body)
    c = ctx(len(case.accepted), case_id=case.state.case_id, role=ROLE_FOR.get(kind, "supervisor"), at=stamp(moment))
    try:
        case.state = apply(case.state, event, c)
    except LedgerError:
        return False
    case.accepted.append((event, c))
    return True


def run(steps: list[tuple[int, tuple[str, str], str, int, int]]) -> tuple[list[Case], datetime]:
    cases = [open_case(case_id) for case_id in CASES]
    moment = START
    for which, action, scope, days, hours in steps:
        moment += timedelta(days=days, hours=hours)
        append(cases[which], action[0], body_for(action, scope), moment)
    return cases, moment


def public(cases: list[Case], clock: datetime) -> str:
    """Every public answer about these cases at ``clock``, as the bytes a client would compare."""
    releases = sorted((e for c in cases for e in public_release_entries(c.state)), key=public_release_order)
    stats = monthly_statistics(
        [e for c in cases for e in statistics_entries(c.state)], at=clock, since="2026-01", lag_months=1, bucket=BUCKET
    )
    return json.dumps({"releases": releases, "statistics": stats}, sort_keys=True)


def oracle(cases: list[Case], clock: datetime) -> str:
    """The same answer from the releases and the bucketed counts alone: each closed month's captures
    classified by re-folding each case's history up to the cutoff and asking ``release_status``."""
    releases = sorted(
        (
            {"sha256": e.sha256, "released_at": c.occurred_at, "basis": e.basis, "channel": e.channel, "url": e.url}
            for case in cases
            for e, c in case.accepted
            if e.TYPE == "FootageReleased"
        ),
        key=public_release_order,
    )
    months = []
    month = datetime(2026, 1, 1, tzinfo=UTC)
    while True:
        cutoff = add_months(month, 2)
        if cutoff > clock:
            break
        counts = dict.fromkeys(STATISTICS_STATUSES, 0)
        for case in cases:
            state: CaseState | None = None
            for e, c in case.accepted:
                if at(c.occurred_at) < cutoff:
                    state = apply(state, e, c)
            assert state is not None
            for footage in state.footage:
                if footage.captured_at[:7] == month.strftime("%Y-%m"):
                    status = release_status(state, footage)
                    name = {"released": "released", "held": "withheld_under_investigation"}.get(
                        status, "awaiting_decision"
                    )
                    counts[name] += 1
        months.append(
            {
                "month": month.strftime("%Y-%m"),
                "as_of": stamp(cutoff),
                **{k: {"at_least": v - v % BUCKET, "at_most": v - v % BUCKET + BUCKET - 1} for k, v in counts.items()},
            }
        )
        month = add_months(month, 1)
    return json.dumps({"releases": releases, "statistics": months}, sort_keys=True)


def add_months(moment: datetime, n: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + n
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, max_size=60), st.integers(0, 120))
def test_public_answers_are_a_function_of_releases_and_bucketed_counts(steps: list[Any], later: int) -> None:
    cases, last = run(steps)
    clock = last + timedelta(days=later)
    assert public(cases, clock) == oracle(cases, clock)


@settings(max_examples=120, deadline=None)
@given(st.lists(STEP, max_size=60), st.integers(0, 120), st.sampled_from(FOOTAGE), st.integers(0, 2))
def test_a_hold_lift_or_capture_now_changes_no_public_byte(
    steps: list[Any], later: int, target: str, which: int
) -> None:
    """Anything but a release, done in the current month, leaves every public answer as it was."""
    cases, last = run(steps)
    clock = last + timedelta(days=later)
    now = max(last, datetime(clock.year, clock.month, 1, tzinfo=UTC))
    before = public(cases, clock)
    case = cases[which]
    unreleased = [f.footage_id for f in case.state.footage if not case.state.releases_of(f.footage_id)]
    append(case, "InvestigationHoldPlaced", {"hold_id": "h-new", "scope": unreleased or "case"}, now)
    assert public(cases, clock) == before
    append(case, "FootageCaptured", body_for(("FootageCaptured", target), "one"), now)
    append(case, "InvestigationHoldLifted", {"hold_id": "h-1"}, now)
    assert public(cases, clock) == before
