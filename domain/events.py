"""Event types of the evidence ledger. Wire name = class name; every type is at version 1.

Parse untrusted bodies with :func:`parse_body`; build events in code with ``Cls.create(...)``,
which round-trips through :func:`parse_body` and so validates exactly like a submitted body.

Optional fields (``optional=True`` in the spec) may be absent or null and are ``None`` on the
event. To keep ``parse_body(t, v, body).to_body() == body`` exact, an optional key that was
present *as null* is remembered in ``explicit_nulls``; :meth:`Event.to_body` emits an optional key
when its value is not ``None`` or when it is listed there, and omits it otherwise. Required but
nullable fields (``reporter``, the ``federal_officials`` flags) are always emitted.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from domain.errors import InvalidEventError
from domain.fields import (
    BOOL,
    COUNT,
    ID,
    LOCATION,
    MEDIA_TYPE,
    NARRATIVE,
    SHA256,
    SHORT,
    TEXT,
    TIMESTAMP,
    URL,
    Either,
    Enum,
    ListOf,
    Nullable,
    Obj,
    PublicKey,
    Text,
    dump_fields,
    invalid,
    parse_fields,
    spec,
    timestamp_key,
)
from domain.roles import ROLES

CATEGORIES = ("violence", "property_damage", "criminal_conduct", "observed_federal_activity")
REPORT_CHANNELS = ("911_call", "walk_in", "online", "officer_observation")
CONDUCT = ("violence", "property_damage", "other")
FOOTAGE_SOURCES = ("body_worn_camera", "city_surveillance_camera", "resident_submitted", "other")
DEPICTS = ("violence_by_federal_officials", "property_damage_by_federal_officials", "other")
#: what the executive order promises to release (unless under an investigation hold)
RELEASABLE_DEPICTS = frozenset(DEPICTS[:2])
DERIVATIVE_KINDS = ("redaction", "clip", "transcode")
HOLD_AUTHORITIES = ("cpd", "middlesex_da", "massachusetts_ag", "court")
RELEASE_BASES = ("executive_order", "public_records_request", "court_order", "other")

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    TYPE: ClassVar[str] = "Event"
    VERSION: ClassVar[int] = 1
    #: optional keys that the parsed body carried as explicit null (see module docstring)
    explicit_nulls: frozenset[str] = field(default=frozenset(), repr=False)

    def to_body(self) -> dict[str, object]:
        return dump_fields(self)

    def check(self) -> None:
        """Cross-field checks; raise ``InvalidEventError`` via :func:`domain.fields.invalid`."""

    @classmethod
    def create(cls: type[E], **values: Any) -> E:
        """Build and validate in code: same checks as a submitted body."""
        event = parse_body(cls.TYPE, cls.VERSION, cls(**values).to_body())
        assert isinstance(event, cls)
        return event


def _not_before(later: str, earlier: str, path: str, other: str) -> None:
    if timestamp_key(later) < timestamp_key(earlier):
        raise invalid(path, f"a timestamp not before {other}")


# ----------------------------------------------------------------------------- nested values


@dataclass(frozen=True, kw_only=True, slots=True)
class SealedReporter:
    """A reference into the sealed reporter store plus a commitment to its plaintext."""

    sealed_ref: str = spec(ID)
    commitment: str = spec(SHA256)


@dataclass(frozen=True, kw_only=True, slots=True)
class FederalOfficials:
    """One group of federal officials at an incident; ``None`` flags mean unknown."""

    agency: str = spec(SHORT)
    count: int = spec(COUNT)
    identifiable_uniform: bool | None = spec(Nullable(BOOL))
    face_covered: bool | None = spec(Nullable(BOOL))
    body_camera_worn: bool | None = spec(Nullable(BOOL))
    identified_themselves: bool | None = spec(Nullable(BOOL))


# ----------------------------------------------------------------------------- case events


@dataclass(frozen=True, kw_only=True, slots=True)
class CaseOpened(Event):
    TYPE: ClassVar[str] = "CaseOpened"
    case_number: str = spec(ID)
    category: str = spec(Enum(CATEGORIES))
    summary: str = spec(TEXT)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReportReceived(Event):
    TYPE: ClassVar[str] = "ReportReceived"
    report_id: str = spec(ID)
    channel: str = spec(Enum(REPORT_CHANNELS))
    received_at: str = spec(TIMESTAMP)
    location: str = spec(LOCATION)
    observed_agency: str = spec(SHORT)
    narrative: str = spec(NARRATIVE)
    reporter: SealedReporter | None = spec(Nullable(Obj(SealedReporter)))  # noqa: RUF009 (a field())


@dataclass(frozen=True, kw_only=True, slots=True)
class IncidentDocumented(Event):
    TYPE: ClassVar[str] = "IncidentDocumented"
    incident_id: str = spec(ID)
    occurred_from: str = spec(TIMESTAMP)
    occurred_to: str = spec(TIMESTAMP)
    location: str = spec(LOCATION)
    narrative: str = spec(NARRATIVE)
    conduct: tuple[str, ...] = spec(ListOf(Enum(CONDUCT)))
    federal_officials: tuple[FederalOfficials, ...] = spec(
        ListOf(Obj(FederalOfficials), max_len=50, unique=False)
    )

    def check(self) -> None:
        _not_before(self.occurred_to, self.occurred_from, "occurred_to", "occurred_from")


@dataclass(frozen=True, kw_only=True, slots=True)
class FootageCaptured(Event):
    TYPE: ClassVar[str] = "FootageCaptured"
    footage_id: str = spec(ID)
    source: str = spec(Enum(FOOTAGE_SOURCES))
    device_id: str = spec(ID)
    recorded_from: str = spec(TIMESTAMP)
    recorded_to: str = spec(TIMESTAMP)
    sha256: str = spec(SHA256)
    size_bytes: int = spec(COUNT)
    media_type: str = spec(MEDIA_TYPE)
    depicts: tuple[str, ...] = spec(ListOf(Enum(DEPICTS)))
    custodian: str = spec(SHORT)
    stored: bool = spec(BOOL)

    def check(self) -> None:
        _not_before(self.recorded_to, self.recorded_from, "recorded_to", "recorded_from")


@dataclass(frozen=True, kw_only=True, slots=True)
class CustodyTransferred(Event):
    TYPE: ClassVar[str] = "CustodyTransferred"
    footage_id: str = spec(ID)
    from_custodian: str = spec(SHORT)
    to_custodian: str = spec(SHORT)
    purpose: str = spec(TEXT)


@dataclass(frozen=True, kw_only=True, slots=True)
class FootageDerivativeCreated(Event):
    TYPE: ClassVar[str] = "FootageDerivativeCreated"
    derivative_id: str = spec(ID)
    footage_id: str = spec(ID)
    sha256: str = spec(SHA256)
    size_bytes: int = spec(COUNT)
    kind: str = spec(Enum(DERIVATIVE_KINDS))
    description: str = spec(TEXT)


@dataclass(frozen=True, kw_only=True, slots=True)
class InvestigationHoldPlaced(Event):
    TYPE: ClassVar[str] = "InvestigationHoldPlaced"
    hold_id: str = spec(ID)
    #: "case" or a tuple of footage ids
    scope: str | tuple[str, ...] = spec(Either("case", ListOf(ID, max_len=1000)))
    authority: str = spec(Enum(HOLD_AUTHORITIES))
    reason: str = spec(TEXT)


@dataclass(frozen=True, kw_only=True, slots=True)
class InvestigationHoldLifted(Event):
    TYPE: ClassVar[str] = "InvestigationHoldLifted"
    hold_id: str = spec(ID)
    reason: str = spec(TEXT)


@dataclass(frozen=True, kw_only=True, slots=True)
class FootageReleased(Event):
    TYPE: ClassVar[str] = "FootageReleased"
    footage_id: str = spec(ID)
    derivative_id: str | None = spec(ID, optional=True)
    sha256: str = spec(SHA256)
    basis: str = spec(Enum(RELEASE_BASES))
    channel: str = spec(SHORT)
    url: str | None = spec(URL, optional=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReferralMade(Event):
    TYPE: ClassVar[str] = "ReferralMade"
    referral_id: str = spec(ID)
    authority: str = spec(ID)
    basis: str = spec(TEXT)
    bundle_sha256: str | None = spec(SHA256, optional=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReferralAcknowledged(Event):
    TYPE: ClassVar[str] = "ReferralAcknowledged"
    referral_id: str = spec(ID)
    note: str = spec(Text(2000, min_len=0))


@dataclass(frozen=True, kw_only=True, slots=True)
class CaseClosed(Event):
    TYPE: ClassVar[str] = "CaseClosed"
    disposition: str = spec(TEXT)


@dataclass(frozen=True, kw_only=True, slots=True)
class CaseReopened(Event):
    TYPE: ClassVar[str] = "CaseReopened"
    reason: str = spec(TEXT)


@dataclass(frozen=True, kw_only=True, slots=True)
class EvidenceAccessed(Event):
    """Appended by the server's own service key whenever a file is downloaded."""

    TYPE: ClassVar[str] = "EvidenceAccessed"
    footage_id: str | None = spec(ID, optional=True)
    derivative_id: str | None = spec(ID, optional=True)
    actor: str = spec(SHORT)
    purpose: str = spec(TEXT)

    def check(self) -> None:
        if (self.footage_id is None) == (self.derivative_id is None):
            raise invalid("footage_id|derivative_id", "exactly one of footage_id and derivative_id")


# ----------------------------------------------------------------------------- key registry events


def key_id_for(raw_public_key: bytes) -> str:
    """The key id: SHA-256 (lowercase hex) of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(raw_public_key).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRegistered(Event):
    TYPE: ClassVar[str] = "KeyRegistered"
    key_id: str = spec(SHA256)
    public_key: str = spec(PublicKey())
    actor: str = spec(SHORT)
    role: str = spec(Enum(ROLES))
    authority: str | None = spec(ID, optional=True)
    valid_from: str = spec(TIMESTAMP)

    def check(self) -> None:
        if key_id_for(base64.b64decode(self.public_key)) != self.key_id:
            raise invalid("key_id", "the SHA-256 (lowercase hex) of the raw public_key bytes")


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRevoked(Event):
    TYPE: ClassVar[str] = "KeyRevoked"
    key_id: str = spec(SHA256)
    reason: str = spec(TEXT)
    compromised_since: str | None = spec(TIMESTAMP, optional=True)


# ----------------------------------------------------------------------------- registry of types

_ALL: tuple[type[Event], ...] = (
    CaseOpened,
    ReportReceived,
    IncidentDocumented,
    FootageCaptured,
    CustodyTransferred,
    FootageDerivativeCreated,
    InvestigationHoldPlaced,
    InvestigationHoldLifted,
    FootageReleased,
    ReferralMade,
    ReferralAcknowledged,
    CaseClosed,
    CaseReopened,
    EvidenceAccessed,
    KeyRegistered,
    KeyRevoked,
)
EVENT_TYPES: dict[str, type[Event]] = {cls.TYPE: cls for cls in _ALL}
REGISTRY_EVENT_TYPES: frozenset[str] = frozenset({"KeyRegistered", "KeyRevoked"})
CASE_EVENT_TYPES: frozenset[str] = frozenset(EVENT_TYPES) - REGISTRY_EVENT_TYPES


def _unknown_type(type_name: object, type_version: object) -> InvalidEventError:
    safe = isinstance(type_name, str) and type_name.isascii() and type_name.isalnum() and len(type_name) < 64
    shown = repr(type_name) if safe else "(unprintable name)"
    return InvalidEventError(
        f"unknown event type or version: {shown} v{type_version if type(type_version) is int else '?'}; "
        f"known: {', '.join(f'{t} v{c.VERSION}' for t, c in EVENT_TYPES.items())}",
        code="UNKNOWN_EVENT_TYPE",
        type=type_name if safe else None,
        version=type_version if type(type_version) is int else None,
    )


def parse_body(type_name: str, type_version: int, body: Mapping[str, object]) -> Event:
    """Validate an untrusted body strictly and return the typed event.

    Raises ``InvalidEventError`` with code ``UNKNOWN_EVENT_TYPE`` or ``INVALID_BODY`` (refs:
    ``field`` = path, ``expected``); messages never contain submitted values.
    """
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None or type(type_version) is not int or type_version != cls.VERSION:
        raise _unknown_type(type_name, type_version)
    event: Event = parse_fields(cls, body)
    event.check()
    return event
