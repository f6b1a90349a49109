"""Rules for footage, custody, derivatives, holds, releases, referrals and evidence access.

Each effect is named by its event type's declaration (``Rules.effect`` in :mod:`domain.events`) and
called by :func:`domain.case.apply` after the checks every case event shares. The event types are
imported for annotations only: :mod:`domain.events` imports this module.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from domain.case_state import CaseState, refuse_duplicate, require_footage, violation
from domain.context import DomainConfig, EventContext
from domain.records import (
    Acknowledgement,
    Derivative,
    Footage,
    Hold,
    Referral,
    Release,
)
from domain.vocabulary import RELEASABLE_DEPICTS

if TYPE_CHECKING:
    from domain.events import (
        CustodyTransferred,
        EvidenceAccessed,
        FootageCaptured,
        FootageDerivativeCreated,
        FootageReleased,
        InvestigationHoldLifted,
        InvestigationHoldPlaced,
        ReferralAcknowledged,
        ReferralMade,
    )

T = TypeVar("T", Hold, Referral)

#: the purpose recorded on the first link of every custody chain
CAPTURE_PURPOSE = "capture"


def _swap(items: tuple[T, ...], key: str, new: T) -> tuple[T, ...]:
    """``items`` with the element whose ``key`` attribute equals ``new``'s replaced by ``new``."""
    return tuple(new if getattr(i, key) == getattr(new, key) else i for i in items)


def is_depicting_federal_misconduct(footage: Footage) -> bool:
    """What the executive order promises to release (unless held)."""
    return not RELEASABLE_DEPICTS.isdisjoint(footage.depicts)


# ---------------------------------------------------------------------------- footage


def capture(state: CaseState, e: FootageCaptured, ctx: EventContext, _: DomainConfig) -> CaseState:
    refuse_duplicate(state.footage_by_id(e.footage_id) is not None, "footage_id", e.footage_id)
    footage = Footage(
        footage_id=e.footage_id,
        source=e.source,
        device_id=e.device_id,
        recorded_from=e.recorded_from,
        recorded_to=e.recorded_to,
        sha256=e.sha256,
        size_bytes=e.size_bytes,
        media_type=e.media_type,
        depicts=e.depicts,
        stored=e.stored,
        custodian=e.custodian,
        captured_at=ctx.occurred_at,
        captured_seq=ctx.seq,
        custody_steps=1,  # the capture is the first link (``FootageCaptured``'s ``Custody`` declaration)
    )
    return replace(state, footage=(*state.footage, footage))


def transfer_custody(
    state: CaseState, e: CustodyTransferred, ctx: EventContext, _: DomainConfig
) -> CaseState:
    footage = require_footage(state, e.footage_id)
    if e.from_custodian != footage.custodian:
        raise violation(
            "from_custodian is not the current custodian of the footage",
            "CUSTODY_MISMATCH",
            footage_id=e.footage_id,
        )
    # The link itself is a row of its own (``CustodyTransferred``'s ``Custody`` declaration): the
    # state keeps what the rules use, the current custodian, and the number of links.
    return state.with_footage(
        replace(footage, custodian=e.to_custodian, custody_steps=footage.custody_steps + 1)
    )


def create_derivative(
    state: CaseState, e: FootageDerivativeCreated, ctx: EventContext, _: DomainConfig
) -> CaseState:
    footage = require_footage(state, e.footage_id)
    refuse_duplicate(state.derivative_owner(e.derivative_id) is not None, "derivative_id", e.derivative_id)
    derivative = Derivative(
        derivative_id=e.derivative_id,
        sha256=e.sha256,
        kind=e.kind,
        size_bytes=e.size_bytes,
        created_at=ctx.occurred_at,
        seq=ctx.seq,
    )
    return state.with_footage(replace(footage, derivatives=(*footage.derivatives, derivative)))


# ---------------------------------------------------------------------------- holds and releases


def place_hold(state: CaseState, e: InvestigationHoldPlaced, ctx: EventContext, _: DomainConfig) -> CaseState:
    refuse_duplicate(state.hold_by_id(e.hold_id) is not None, "hold_id", e.hold_id)
    if e.scope != "case":
        for footage_id in e.scope:
            require_footage(state, footage_id)
    hold = Hold(
        hold_id=e.hold_id,
        scope=e.scope,
        authority=e.authority,
        placed_at=ctx.occurred_at,
        placed_seq=ctx.seq,
    )
    return replace(state, holds=(*state.holds, hold))


def lift_hold(state: CaseState, e: InvestigationHoldLifted, ctx: EventContext, _: DomainConfig) -> CaseState:
    hold = state.hold_by_id(e.hold_id)
    if hold is None or not hold.active:
        raise violation("no active hold with this id", "HOLD_NOT_ACTIVE", hold_id=e.hold_id)
    lifted = replace(hold, active=False, lifted_at=ctx.occurred_at, lifted_seq=ctx.seq)
    return replace(state, holds=_swap(state.holds, "hold_id", lifted))


def _released_sha256(state: CaseState, footage: Footage, derivative_id: str | None) -> str:
    """The sha256 a release must carry: the footage's, or the named derivative's."""
    if derivative_id is None:
        return footage.sha256
    owner = state.derivative_owner(derivative_id)
    if owner is None:
        raise violation(
            "no derivative with this id in the case", "UNKNOWN_DERIVATIVE", derivative_id=derivative_id
        )
    derivative = owner.derivative(derivative_id)
    if owner.footage_id != footage.footage_id or derivative is None:
        raise violation(
            "the derivative was made from other footage",
            "DERIVATIVE_PARENT_MISMATCH",
            derivative_id=derivative_id,
            footage_id=footage.footage_id,
        )
    return derivative.sha256


def _lifting() -> str:
    """``an InvestigationHoldLifted event (only a key of role 'supervisor' may append it)``, from the declarations."""
    from domain.events import EVENT_TYPES
    from domain.roles import who_may

    names = [name for name, cls in EVENT_TYPES.items() if cls.RULES.effect is lift_hold]
    return " or ".join(f"an {name} event ({who_may(name)} append it)" for name in names) or "a lifting event"


def release(state: CaseState, e: FootageReleased, ctx: EventContext, _: DomainConfig) -> CaseState:
    footage = require_footage(state, e.footage_id)
    if e.sha256 != _released_sha256(state, footage, e.derivative_id):
        raise violation(
            "sha256 does not match the recorded file",
            "SHA256_MISMATCH",
            footage_id=e.footage_id,
            derivative_id=e.derivative_id,
        )
    holds = state.active_holds_covering(e.footage_id)
    if holds:
        raise violation(
            f"an active investigation hold covers this footage; lift it first with {_lifting()}",
            "RELEASE_UNDER_HOLD",
            hold_id=holds[0].hold_id,
            footage_id=e.footage_id,
        )
    if e.basis == "executive_order" and not is_depicting_federal_misconduct(footage):
        raise violation(
            "the executive order covers footage of violence or property damage by federal officials",
            "RELEASE_NOT_ELIGIBLE",
            footage_id=e.footage_id,
        )
    release = Release(
        footage_id=e.footage_id,
        derivative_id=e.derivative_id,
        sha256=e.sha256,
        basis=e.basis,
        channel=e.channel,
        url=e.url,
        at=ctx.occurred_at,
        seq=ctx.seq,
    )
    return replace(state, releases=(*state.releases, release))


# ---------------------------------------------------------------------------- referrals and access


def make_referral(state: CaseState, e: ReferralMade, ctx: EventContext, config: DomainConfig) -> CaseState:
    refuse_duplicate(state.referral_by_id(e.referral_id) is not None, "referral_id", e.referral_id)
    if e.authority not in config.authorities:
        raise violation(
            "referrals go only to configured authorities",
            "AUTHORITY_NOT_CONFIGURED",
            referral_id=e.referral_id,
            authority=e.authority,
        )
    referral = Referral(
        referral_id=e.referral_id,
        authority=e.authority,
        basis=e.basis,
        bundle_sha256=e.bundle_sha256,
        made_at=ctx.occurred_at,
        seq=ctx.seq,
    )
    return replace(state, referrals=(*state.referrals, referral))


def acknowledge_referral(
    state: CaseState, e: ReferralAcknowledged, ctx: EventContext, _: DomainConfig
) -> CaseState:
    referral = state.referral_by_id(e.referral_id)
    if referral is None:
        raise violation("no referral with this id in the case", "UNKNOWN_REFERRAL", referral_id=e.referral_id)
    if ctx.authority != referral.authority:
        raise violation(
            "only the authority the case was referred to may acknowledge it",
            "REFERRAL_AUTHORITY_MISMATCH",
            referral_id=e.referral_id,
        )
    if referral.acknowledgement is not None:
        raise violation(
            "the referral is already acknowledged", "REFERRAL_ALREADY_ACKNOWLEDGED", referral_id=e.referral_id
        )
    ack = Acknowledgement(note=e.note, at=ctx.occurred_at, actor=ctx.actor, seq=ctx.seq)
    return replace(
        state, referrals=_swap(state.referrals, "referral_id", replace(referral, acknowledgement=ack))
    )


def count_access(state: CaseState, e: EvidenceAccessed, ctx: EventContext, _: DomainConfig) -> CaseState:
    if e.footage_id is not None:
        footage = require_footage(state, e.footage_id)
    else:
        assert e.derivative_id is not None  # guaranteed by EvidenceAccessed.check
        owner = state.derivative_owner(e.derivative_id)
        if owner is None:
            raise violation(
                "no derivative with this id in the case", "UNKNOWN_DERIVATIVE", derivative_id=e.derivative_id
            )
        footage = owner
    counted = state.with_footage(replace(footage, accesses=footage.accesses + 1))
    return replace(counted, accesses=state.accesses + 1)
