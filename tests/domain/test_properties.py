"""Property tests: folding is deterministic and the state JSON round-trips on generated scenarios."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.case import CaseState, apply
from domain.case_evidence import is_depicting_federal_misconduct
from domain.context import EventContext
from domain.errors import LedgerError
from domain.events import (
    ALLOWED_WHEN_CLOSED,
    DEPICTS,
    FOOTAGE_SOURCES,
    RELEASE_BASES,
    CustodyTransferred,
    Event,
    FootageReleased,
    InvestigationHoldLifted,
)
from domain.projections import RELEASE_STATUSES, case_view, public_release_entries, release_status
from domain.roles import is_allowed
from tests.support.domain import DERIVATIVE_SHA, FOOTAGE_SHA, OTHER_SHA, ROLE_FOR, ctx, ev

Op = tuple[str, dict[str, Any], str | None, str | None]  # type, body overrides, role, ctx authority

FOOTAGE = st.sampled_from(["fp-1", "fp-2", "fp-3"])
DERIVATIVES = st.sampled_from(["dv-1", "dv-2"])
SHAS = st.sampled_from([FOOTAGE_SHA, DERIVATIVE_SHA, OTHER_SHA])
CUSTODIANS = st.sampled_from(["CPD Evidence Unit", "CPD Video Lab", "Middlesex DA"])
AUTHORITIES = st.sampled_from(["middlesex_da", "massachusetts_ag", "us_attorney"])
ROLES = st.sampled_from([None] * 12 + ["investigator", "auditor", "prosecutor"])
#: "MATCH" is replaced by the sha256 the release must carry, so releases are often accepted
RELEASE_SHAS = st.sampled_from(["MATCH", "MATCH", "MATCH", OTHER_SHA])


def op(type_name: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Op]:
    return st.tuples(st.just(type_name), st.fixed_dictionaries(fields), ROLES, AUTHORITIES)


CAPTURE = op(
    "FootageCaptured",
    footage_id=FOOTAGE,
    sha256=SHAS,
    source=st.sampled_from(FOOTAGE_SOURCES),
    depicts=st.lists(st.sampled_from(DEPICTS), min_size=1, max_size=3, unique=True),
    custodian=CUSTODIANS,
)
RELEASE = op(
    "FootageReleased",
    footage_id=FOOTAGE,
    derivative_id=st.one_of(st.none(), DERIVATIVES),
    sha256=RELEASE_SHAS,
    basis=st.sampled_from(RELEASE_BASES),
)
HOLD_IDS = st.sampled_from(["h-1", "h-2", "h-3"])
SCOPES = st.one_of(st.just("case"), st.lists(FOOTAGE, min_size=1, max_size=2, unique=True))
# one_of picks branches uniformly: repeat the common ones, group the lifecycle ones (rarer)
OPS: st.SearchStrategy[Op] = st.one_of(
    CAPTURE,
    CAPTURE,
    RELEASE,
    RELEASE,
    RELEASE,
    op("ReportReceived", report_id=st.sampled_from(["rep-1", "rep-2"]), reporter=st.none()),
    op("IncidentDocumented", incident_id=st.sampled_from(["inc-1", "inc-2"])),
    op("CustodyTransferred", footage_id=FOOTAGE, from_custodian=CUSTODIANS, to_custodian=CUSTODIANS),
    op("FootageDerivativeCreated", derivative_id=DERIVATIVES, footage_id=FOOTAGE, sha256=SHAS),
    op("InvestigationHoldPlaced", hold_id=HOLD_IDS, scope=SCOPES),
    op("InvestigationHoldLifted", hold_id=HOLD_IDS),
    op("InvestigationHoldLifted", hold_id=HOLD_IDS),
    op("ReferralMade", referral_id=st.sampled_from(["ref-1", "ref-2"]), authority=AUTHORITIES),
    op("ReferralAcknowledged", referral_id=st.sampled_from(["ref-1", "ref-2"])),
    op("EvidenceAccessed", footage_id=FOOTAGE),
    st.one_of(op("CaseClosed"), op("CaseReopened"), op("CaseReopened"), op("CaseReopened")),
)


def resolve(state: CaseState, type_name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Replace a "MATCH" sha256 by the one the release must carry (if the target exists)."""
    if overrides.get("sha256") != "MATCH":
        return overrides
    footage = state.footage_by_id(overrides["footage_id"])
    derivative = (
        footage.derivative(overrides["derivative_id"]) if footage and overrides["derivative_id"] else None
    )
    sha = derivative.sha256 if derivative else footage.sha256 if footage else FOOTAGE_SHA
    return {**overrides, "sha256": sha}


def fold(ops: list[Op]) -> tuple[CaseState, list[tuple[Event, EventContext]], list[CaseState]]:
    """Apply ops in order; refused ops are skipped (the ledger would not append them)."""
    setup = [
        ev("CaseOpened"),
        ev("FootageCaptured"),
        ev("FootageCaptured", footage_id="fp-2", sha256=OTHER_SHA, depicts=["other"]),
    ]
    accepted: list[tuple[Event, EventContext]] = [(e, ctx(seq)) for seq, e in enumerate(setup)]
    state: CaseState | None = None
    for e, c in accepted:
        state = apply(state, e, c)
    assert state is not None
    states = [state]
    for type_name, overrides, role, authority in ops:
        event = ev(type_name, **resolve(state, type_name, overrides))
        c = ctx(len(accepted), role=role or ROLE_FOR.get(type_name, "supervisor"), authority=authority)
        try:
            state = apply(state, event, c)
        except LedgerError:
            continue
        accepted.append((event, c))
        states.append(state)
    return state, accepted, states


@settings(max_examples=80, deadline=None)
@given(st.lists(OPS, max_size=30))
def test_replay_is_deterministic_and_json_round_trips(ops: list[Op]) -> None:
    first, accepted, states = fold(ops)
    second, accepted_again, _ = fold(ops)
    assert json.dumps(first.to_json(), sort_keys=True) == json.dumps(second.to_json(), sort_keys=True)
    assert accepted == accepted_again

    replayed: CaseState | None = None
    for event, c in accepted:
        replayed = apply(replayed, event, c)
    assert replayed == first and first.version == accepted[-1][1].seq

    for state in states:
        data = json.loads(json.dumps(state.to_json()))
        assert CaseState.from_json(data) == state
        assert CaseState.from_json(data).to_json() == state.to_json()


@settings(max_examples=60, deadline=None)
@given(st.lists(OPS, max_size=30))
def test_projections_are_json_and_consistent(ops: list[Op]) -> None:
    state, _, _ = fold(ops)
    view = json.loads(json.dumps(case_view(state)))
    public = json.loads(json.dumps(public_release_entries(state)))
    for footage in state.footage:
        status = release_status(state, footage)
        assert status in RELEASE_STATUSES
        if status == "held":
            assert state.active_holds_covering(footage.footage_id)
    released = {r.footage_id for r in state.releases}
    assert {f["footage_id"] for f in view["footage"] if f["release_status"] == "released"} == released
    # the public list is the releases and nothing else: one entry per release, its own fields only
    assert sorted(json.dumps(e, sort_keys=True) for e in public) == sorted(
        json.dumps({"sha256": r.sha256, "released_at": r.at, "basis": r.basis, "channel": r.channel, "url": r.url},
                   sort_keys=True)
        for r in state.releases
    )
    # a release under the executive order never names footage that does not depict federal misconduct
    for release in state.releases:
        released_footage = state.footage_by_id(release.footage_id)
        assert released_footage is not None
        if release.basis == "executive_order":
            assert set(released_footage.depicts) & {
                "violence_by_federal_officials",
                "property_damage_by_federal_officials",
            }


def _rules_hold(before: CaseState, event: Event, c: EventContext) -> None:
    """The rules an accepted event must have met, checked against the state before it."""
    assert is_allowed(c.role, event.TYPE)
    if before.status == "closed":
        assert event.TYPE in ALLOWED_WHEN_CLOSED
    if isinstance(event, FootageReleased):
        footage = before.footage_by_id(event.footage_id)
        assert footage is not None
        assert not before.active_holds_covering(event.footage_id)  # never released under a hold
        owner = None if event.derivative_id is None else before.derivative_owner(event.derivative_id)
        recorded = footage if owner is None else owner.derivative(event.derivative_id or "")
        assert recorded is not None and recorded.sha256 == event.sha256
        assert event.derivative_id is None or owner == footage
        if event.basis == "executive_order":
            assert is_depicting_federal_misconduct(footage)
    if isinstance(event, CustodyTransferred):
        footage = before.footage_by_id(event.footage_id)
        assert footage is not None and footage.custodian == event.from_custodian
    if isinstance(event, InvestigationHoldLifted):
        hold = before.hold_by_id(event.hold_id)
        assert hold is not None and hold.active


@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, max_size=30))
def test_every_accepted_event_met_the_rules_in_the_state_before_it(ops: list[Op]) -> None:
    """A rule that stops refusing (e.g. a release under an active hold) fails here."""
    _, accepted, states = fold(ops)
    generated = accepted[len(accepted) - len(states) + 1 :]
    for before, (event, c) in zip(states[:-1], generated, strict=True):
        _rules_hold(before, event, c)
