"""The Case aggregate: an immutable state and a pure ``apply`` that enforces the rules.

``apply(state, event, ctx, config)`` returns the next state or raises ``RuleViolation`` /
``AuthorizationError``. It does not check seq, prev hash or signatures (the ledger does) and never
reads a clock. The state does not keep a timeline (the ledger does): it grows with footage, holds,
releases and the like, never with every event.

What differs per event type is declared with the type (``Rules`` in :mod:`domain.events`): its
roles, whether it opens a case, whether a closed case accepts it, and its effect (the rules of
:mod:`domain.case_lifecycle` and :mod:`domain.case_evidence`).

Check order: stream -> role -> case exists / not yet opened -> closed -> event rules.
"""

from __future__ import annotations

from dataclasses import replace

from domain.case_state import CaseState, violation
from domain.context import REGISTRY_STREAM_ID, DomainConfig, EventContext
from domain.events import ALLOWED_WHEN_CLOSED, Event, Rules, rules_of
from domain.roles import authorize, who_may

__all__ = ["ALLOWED_WHEN_CLOSED", "CaseState", "apply", "replay"]


def _check_stream(state: CaseState | None, event: Event, ctx: EventContext) -> Rules:
    rules = rules_of(event)
    if rules is None or rules.stream != "case" or ctx.case_id == REGISTRY_STREAM_ID:
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
    return rules


def apply(
    state: CaseState | None, event: Event, ctx: EventContext, config: DomainConfig | None = None
) -> CaseState:
    """Validate ``event`` against ``state`` and return the next state (pure)."""
    config = config or DomainConfig()
    rules = _check_stream(state, event, ctx)
    authorize(ctx.role, event.TYPE)
    if rules.opens:
        if state is not None:
            raise violation("the case is already open", "CASE_ALREADY_OPENED", case_id=ctx.case_id)
        opened: CaseState = rules.effect(None, event, ctx, config)
        return opened
    if state is None:
        raise violation(case_not_opened_message(ctx), "CASE_NOT_OPENED", case_id=ctx.case_id)
    if state.status == "closed" and not rules.when_closed:
        raise violation(
            f"the case is closed; reopen it first with {_reopening()}",
            "CASE_CLOSED",
            case_id=state.case_id,
            event_type=event.TYPE,
        )
    new: CaseState = rules.effect(state, event, ctx, config)
    if rules.custody is not None:
        _check_counted(rules.custody.footage_field, state, new, event)
    return replace(new, version=ctx.seq, updated_at=ctx.occurred_at)


def _check_counted(footage_field: str, before: CaseState, after: CaseState, event: Event) -> None:
    """An event type that declares a custody link must count it: the ledger numbers the link's row
    by the footage's ``custody_steps`` after the event, so a type whose effect forgets the count
    would number two links alike. A fault of the type's definition, never of the input."""
    footage_id = getattr(event, footage_field)
    old, counted = before.footage_by_id(footage_id), after.footage_by_id(footage_id)
    if counted is None or counted.custody_steps != (0 if old is None else old.custody_steps) + 1:
        raise TypeError(f"{event.TYPE} declares a custody link but its effect does not count it in custody_steps")


def replay(items: list[tuple[Event, EventContext]], config: DomainConfig | None = None) -> CaseState | None:
    """Fold a case's events in order (helper for tests and rebuilds)."""
    state: CaseState | None = None
    for event, ctx in items:
        state = apply(state, event, ctx, config)
    return state


def case_not_opened_message(ctx: EventContext) -> str:
    """An event for a case with no events yet: the case does not exist (a mistyped id, or not yet
    opened); the next step for the command line and the API, with the opening type(s) from the
    declarations. A later position without an opening (a replay or a bundle that lost its first
    event) keeps the rule's own words."""
    from domain.events import EVENT_TYPES

    opening = " or ".join(name for name, cls in EVENT_TYPES.items() if cls.RULES.opens) or "an opening event"
    if ctx.seq > 1:  # not the first position: earlier events are missing, not the case
        return f"the first event of a case must be {opening}"
    case_id = ctx.case_id
    return (
        f"case {case_id} has no events yet (it does not exist): open it with a {opening} event"
        f" (evidence-ledger case new, or POST /v1/cases/{case_id}/events), or check the id"
        " (evidence-ledger case list, or GET /v1/cases)"
    )


def _reopening() -> str:
    """``a CaseReopened event (only a key of role 'supervisor' may append it)``, from the declarations."""
    from domain import case_lifecycle
    from domain.events import EVENT_TYPES

    names = [name for name, cls in EVENT_TYPES.items() if cls.RULES.effect is case_lifecycle.reopen]
    return " or ".join(f"a {name} event ({who_may(name)} append it)" for name in names) or "a reopening event"
