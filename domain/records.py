"""Immutable records that make up the case state, with a lossless JSON round trip.

Records hold value types only (str, int, bool, None, tuples, nested records). ``to_json`` turns
tuples into lists; ``from_json`` turns lists back into tuples and nested dicts into the records
named in ``NESTED``. The key set must match exactly, so a stale or tampered read model fails loudly
with ``MalformedInputError(code="MALFORMED_STATE")`` instead of producing a wrong decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from domain.errors import MalformedInputError

R = TypeVar("R", bound="Record")


def malformed_state(where: str, expectation: str) -> MalformedInputError:
    return MalformedInputError(f"{where}: expected {expectation}", code="MALFORMED_STATE", field=where)


def _to_json(value: object) -> object:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


class Record:
    __slots__ = ()
    #: field name -> record type for nested records (single, optional or tuple of them)
    NESTED: ClassVar[dict[str, type[Record]]] = {}

    def to_json(self) -> dict[str, Any]:
        return {f.name: _to_json(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_json(cls: type[R], data: object) -> R:
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        if not isinstance(data, Mapping) or set(data) != set(names):
            raise malformed_state(cls.__name__, "an object with the keys " + ", ".join(names))
        values: dict[str, Any] = {}
        for name in names:
            raw = data[name]
            nested = cls.NESTED.get(name)
            if nested is not None and isinstance(raw, list):
                values[name] = tuple(nested.from_json(v) for v in raw)
            elif nested is not None and raw is not None:
                values[name] = nested.from_json(raw)
            elif isinstance(raw, list):
                values[name] = tuple(raw)
            else:
                values[name] = raw
        try:
            return cls(**values)
        except TypeError as exc:
            raise malformed_state(cls.__name__, "valid field values") from exc


@dataclass(frozen=True, kw_only=True, slots=True)
class CustodyStep(Record):
    """One link of a footage item's chain of custody; the first link (``from_custodian`` None) is the
    capture. Not part of the case state: the chain grows with every transfer, so the ledger keeps it
    as rows of their own, one per link (:func:`domain.projections.custody_entry`), and the state
    only the current custodian and the number of links."""

    from_custodian: str | None
    to_custodian: str
    purpose: str
    at: str
    seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Derivative(Record):
    derivative_id: str
    sha256: str
    kind: str
    size_bytes: int
    created_at: str
    seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Footage(Record):
    NESTED: ClassVar[dict[str, type[Record]]] = {"derivatives": Derivative}
    footage_id: str
    source: str
    device_id: str
    recorded_from: str
    recorded_to: str
    sha256: str
    size_bytes: int
    media_type: str
    depicts: tuple[str, ...]
    stored: bool
    custodian: str
    captured_at: str
    captured_seq: int
    #: links in the chain of custody (the capture is the first); the links are rows of their own
    custody_steps: int
    derivatives: tuple[Derivative, ...] = ()
    accesses: int = 0

    def derivative(self, derivative_id: str) -> Derivative | None:
        return next((d for d in self.derivatives if d.derivative_id == derivative_id), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class Report(Record):
    """What the case keeps of a report: no narrative, no location, no reporter identity."""

    report_id: str
    channel: str
    received_at: str
    observed_agency: str
    reporter_sealed: bool
    recorded_at: str
    seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OfficialGroup(Record):
    agency: str
    count: int
    identifiable_uniform: bool | None
    face_covered: bool | None
    body_camera_worn: bool | None
    identified_themselves: bool | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Incident(Record):
    """What the case keeps of an incident: no narrative, no location."""

    NESTED: ClassVar[dict[str, type[Record]]] = {"federal_officials": OfficialGroup}
    incident_id: str
    occurred_from: str
    occurred_to: str
    conduct: tuple[str, ...]
    federal_officials: tuple[OfficialGroup, ...]
    recorded_at: str
    seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Hold(Record):
    hold_id: str
    #: "case" (covers every footage of the case, also later captures) or a tuple of footage ids
    scope: str | tuple[str, ...]
    authority: str
    placed_at: str
    placed_seq: int
    active: bool = True
    lifted_at: str | None = None
    lifted_seq: int | None = None

    def covers(self, footage_id: str) -> bool:
        return self.active and (self.scope == "case" or footage_id in self.scope)


@dataclass(frozen=True, kw_only=True, slots=True)
class Release(Record):
    footage_id: str
    derivative_id: str | None
    sha256: str
    basis: str
    channel: str
    url: str | None
    at: str
    seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Acknowledgement(Record):
    note: str
    at: str
    actor: str
    seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Referral(Record):
    NESTED: ClassVar[dict[str, type[Record]]] = {"acknowledgement": Acknowledgement}
    referral_id: str
    authority: str
    basis: str
    bundle_sha256: str | None
    made_at: str
    seq: int
    acknowledgement: Acknowledgement | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SealedRecordRef(Record):
    """A sealed record a report brought into the case: its reference only (never its contents)."""

    sealed_ref: str
    report_id: str
    seq: int
    shredded: bool = False
    shredded_at: str | None = None
    shredded_seq: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Approval(Record):
    actor: str
    role: str
    at: str
    seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class DisclosureRequest(Record):
    """A request to disclose a sealed record: who asked, who approved, whether it was disclosed.
    Its purpose and legal basis stay in the signed event (free text)."""

    NESTED: ClassVar[dict[str, type[Record]]] = {"approvals": Approval}
    request_id: str
    sealed_ref: str
    requester: str
    requester_role: str
    requested_at: str
    seq: int
    approvals: tuple[Approval, ...] = ()
    disclosed_at: str | None = None
    disclosed_seq: int | None = None
