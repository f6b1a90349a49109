"""The case state: an immutable, JSON-round-trippable read model, plus rule helpers.

It grows with footage, holds, releases and the like, never with every event: the ledger keeps the
timeline and each footage item's chain of custody as rows of their own, one per event, and the state
only the current custodian and the number of links (what the rules use). ``to_json``/``from_json``
are lossless; the JSON carries ``"schema"``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from domain.errors import RuleViolation
from domain.records import (
    DisclosureRequest,
    Footage,
    Hold,
    Incident,
    Record,
    Referral,
    Release,
    Report,
    SealedRecordRef,
    malformed_state,
)

#: 2: a footage item keeps the number of its custody links, not the chain
STATE_SCHEMA = "case-state/2"
#: the statuses a case can have (CaseClosed closes it, CaseReopened opens it again)
CASE_STATUSES = ("open", "closed")


def case_number_key(number: str) -> str:
    """The form in which two case numbers are the same number: ``CPD-2026-0001`` and ``cpd-2026-0001``
    name one case (the number a case was opened with is kept as it was signed)."""
    return number.casefold()


@dataclass(frozen=True, kw_only=True, slots=True)
class CaseState(Record):
    NESTED: ClassVar[dict[str, type[Record]]] = {
        "reports": Report,
        "incidents": Incident,
        "footage": Footage,
        "holds": Hold,
        "releases": Release,
        "referrals": Referral,
        "sealed": SealedRecordRef,
        "disclosures": DisclosureRequest,
    }
    case_id: str
    case_number: str
    category: str
    summary: str
    status: str  # one of CASE_STATUSES
    version: int  # seq of the last applied event
    opened_at: str
    updated_at: str
    closed_at: str | None = None
    disposition: str | None = None
    reopen_count: int = 0
    reports: tuple[Report, ...] = ()
    incidents: tuple[Incident, ...] = ()
    footage: tuple[Footage, ...] = ()
    holds: tuple[Hold, ...] = ()
    releases: tuple[Release, ...] = ()
    referrals: tuple[Referral, ...] = ()
    accesses: int = 0
    sealed: tuple[SealedRecordRef, ...] = ()
    disclosures: tuple[DisclosureRequest, ...] = ()
    disclosure_refusals: int = 0

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        return {"schema": STATE_SCHEMA, **Record.to_json(self)}

    @classmethod
    def from_json(cls, data: object) -> CaseState:
        if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA:
            raise malformed_state("CaseState", f"an object with schema {STATE_SCHEMA!r}")
        body = {k: v for k, v in data.items() if k != "schema"}
        return super(CaseState, cls).from_json(body)

    # ------------------------------------------------------------------ lookups
    def footage_by_id(self, footage_id: str) -> Footage | None:
        return next((f for f in self.footage if f.footage_id == footage_id), None)

    def derivative_owner(self, derivative_id: str) -> Footage | None:
        """The footage that has the derivative ``derivative_id``, if any."""
        return next((f for f in self.footage if f.derivative(derivative_id) is not None), None)

    def hold_by_id(self, hold_id: str) -> Hold | None:
        return next((h for h in self.holds if h.hold_id == hold_id), None)

    def referral_by_id(self, referral_id: str) -> Referral | None:
        return next((r for r in self.referrals if r.referral_id == referral_id), None)

    def sealed_by_ref(self, sealed_ref: str) -> SealedRecordRef | None:
        return next((s for s in self.sealed if s.sealed_ref == sealed_ref), None)

    def disclosure_by_id(self, request_id: str) -> DisclosureRequest | None:
        return next((d for d in self.disclosures if d.request_id == request_id), None)

    def active_holds_covering(self, footage_id: str) -> tuple[Hold, ...]:
        return tuple(h for h in self.holds if h.covers(footage_id))

    def releases_of(self, footage_id: str) -> tuple[Release, ...]:
        return tuple(r for r in self.releases if r.footage_id == footage_id)

    def with_footage(self, footage: Footage) -> CaseState:
        """This state with the footage of the same id replaced."""
        items = tuple(footage if f.footage_id == footage.footage_id else f for f in self.footage)
        return replace(self, footage=items)


def violation(message: str, code: str, **refs: object) -> RuleViolation:
    return RuleViolation(message, code=code, **refs)


def require_footage(state: CaseState, footage_id: str) -> Footage:
    footage = state.footage_by_id(footage_id)
    if footage is None:
        raise violation("no footage with this id in the case", "UNKNOWN_FOOTAGE", footage_id=footage_id)
    return footage


def refuse_duplicate(exists: bool, kind: str, value: str) -> None:
    if exists:
        raise violation(f"{kind} is already used in this case", "DUPLICATE_ID", **{kind: value})
