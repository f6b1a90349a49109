"""Event types of the evidence ledger. Wire name = class name; every type is at version 1.

Each type is one frozen dataclass that declares, next to its fields, everything the rest of the
code needs to know about it (:class:`Rules`, in ``RULES``): the roles that may append it, whether a
closed case accepts it, its timeline label and the ids shown with it, the files it records
(:class:`Media`) and its effect on the state of its stream. ``@register`` adds it to
:data:`EVENT_TYPES`; every other table (:data:`CASE_EVENT_TYPES`, :data:`REGISTRY_EVENT_TYPES`,
:data:`ALLOWED_WHEN_CLOSED`, ``domain.roles.ALLOWED``) is a live view derived from it, so a
registered type is never missing from one of them. See ``docs/adding-an-event-type.md``.

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeVar

from domain import case_evidence as evidence
from domain import case_lifecycle as lifecycle
from domain import case_sealed as sealed
from domain import registry_state as keys
from domain.context import DomainConfig, EventContext
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
from domain.vocabulary import (
    ADMINISTRATION,
    CATEGORIES,
    CONDUCT,
    DEPICTS,
    DERIVATIVE_KINDS,
    DISCLOSURE,
    DISCLOSURE_APPROVAL,
    DISCLOSURE_ATTEMPTS,
    FOOTAGE_SOURCES,
    HOLD_AUTHORITIES,
    INVESTIGATION,
    PROSECUTION,
    RELEASE_BASES,
    REPORT_CHANNELS,
    ROLES,
    SERVICE,
    SHREDDING,
    SUPERVISION,
)

E = TypeVar("E", bound="Event")
C = TypeVar("C", bound="type[Event]")
S = TypeVar("S")

# ----------------------------------------------------------------------------- declarations

#: a timeline label from the event's body (ids and enums only, never free text)
Label = Callable[[Mapping[str, Any]], str]
#: (state before, event, context, configuration) -> state after. A case event's state is a
#: ``CaseState`` (``None`` before the event that opens the case), a registry event's a
#: ``KeyRegistryState``. Raises the domain's errors to refuse the event.
Effect = Callable[[Any, Any, EventContext, DomainConfig], Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class Media:
    """The event records a file named by its SHA-256 (footage, a derivative of it).

    ``id_field`` names the body field with the file's id in the case (it is how bundles, reports
    and fixity problems refer to the file); ``stored_field``, if any, names the boolean body field
    that claims the file is in the footage store (the ledger refuses the claim when it is not);
    ``size_field``, if any, the integer body field with the file's size in bytes, which must then be
    the stored file's size (the ledger refuses a stored claim whose size differs).
    """

    id_field: str
    sha256_field: str = "sha256"
    stored_field: str | None = None
    size_field: str | None = None

    def names(self) -> tuple[str, ...]:
        """The body fields it names."""
        optional = (self.stored_field, self.size_field)
        return (self.id_field, self.sha256_field, *(name for name in optional if name))


@dataclass(frozen=True, kw_only=True, slots=True)
class Custody:
    """The event adds a link to a footage item's chain of custody.

    ``footage_field`` names the body field with the footage id, ``to_field`` the one with the new
    custodian, ``from_field`` the one with the previous custodian (None: the chain's first link, the
    capture) and ``purpose_field`` the link's purpose (None: :data:`CAPTURE_PURPOSE`). The links are
    not kept in the case state, which only counts them (``Footage.custody_steps``; the type's effect
    must count its link): the ledger writes each as a row of its own
    (:func:`domain.projections.custody_entry`), so an append costs the same however long the chain.
    """

    footage_field: str = "footage_id"
    to_field: str
    from_field: str | None = None
    purpose_field: str | None = None

    def names(self) -> tuple[str, ...]:
        """The body fields it names."""
        return tuple(n for n in (self.footage_field, self.to_field, self.from_field, self.purpose_field) if n)


#: the purpose of the first link of every custody chain (the capture)
CAPTURE_PURPOSE = evidence.CAPTURE_PURPOSE


@dataclass(frozen=True, kw_only=True, slots=True)
class Rules:
    """What an event type declares next to its fields (``RULES``). Read it with :func:`rules_of`
    (an event) or :func:`declared` (a type name).

    * ``roles``: the roles that may append it (a key registry event: that its signer needs);
    * ``effect``: its effect on the state of its stream (see :data:`Effect`);
    * ``label`` and ``refs``: its line on the timeline, and the body fields shown as ids with it;
    * ``stream``: ``"case"`` or ``"registry"`` (the key registry);
    * ``opens``: the event that opens a case (its effect gets ``None`` and builds the state);
    * ``when_closed``: accepted on a closed case (everything else waits for a reopening);
    * ``media``: the file it records, if any;
    * ``custody``: the link it adds to a footage item's chain of custody, if any;
    * ``sealed_field``: the body field holding a ``{sealed_ref, commitment}`` object (or null) that
      brings a sealed record into the case: the ledger refuses a new event naming a record that does
      not exist, was shredded or belongs to another case (``UNKNOWN_SEALED_REF``).
    """

    roles: frozenset[str]
    effect: Effect
    label: Label
    refs: tuple[str, ...] = ()
    stream: Literal["case", "registry"] = "case"
    opens: bool = False
    when_closed: bool = False
    media: Media | None = None
    custody: Custody | None = None
    sealed_field: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    TYPE: ClassVar[str] = "Event"
    VERSION: ClassVar[int] = 1
    #: what this type declares (every registered type sets it on its own class)
    RULES: ClassVar[Rules]
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


# ----------------------------------------------------------------------------- registry of types

#: wire name -> class of every registered type, in registration order: the one table. Change it
#: only with :func:`register` / :func:`unregister`.
EVENT_TYPES: dict[str, type[Event]] = {}


def _refuse(cls: type, problem: str) -> TypeError:
    return TypeError(f"event type {getattr(cls, '__name__', cls)!r}: {problem}")


def _check_declaration(cls: type[Event]) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Event) and cls is not Event):
        raise _refuse(cls, "not a subclass of Event")
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__dataclass_fields__" not in cls.__dict__:
        raise _refuse(cls, "not declared with @dataclass(frozen=True, ...) (put @register above it)")
    if (
        "TYPE" not in cls.__dict__
        or cls.__name__ != cls.TYPE
        or not (cls.TYPE.isascii() and cls.TYPE.isalnum())
    ):
        raise _refuse(cls, "TYPE must be set on the class and equal its (ASCII, alphanumeric) name")
    if cls.TYPE in EVENT_TYPES:
        raise _refuse(cls, "a type of this name is already registered")
    rules = cls.__dict__.get("RULES")
    if not isinstance(rules, Rules):
        raise _refuse(cls, "RULES (a domain.events.Rules) must be set on the class itself")
    if not rules.roles <= set(ROLES):
        raise _refuse(cls, f"unknown role(s) {sorted(rules.roles - set(ROLES))}")
    if not (callable(rules.effect) and callable(rules.label)):
        raise _refuse(cls, "effect and label must be callables")
    if rules.stream not in ("case", "registry") or (rules.stream == "registry" and rules.opens):
        raise _refuse(cls, "stream is 'case' or 'registry', and only a case event opens a case")
    if rules.custody is not None and rules.stream != "case":
        raise _refuse(cls, "only a case event adds to a footage item's chain of custody")
    body = {f.name for f in fields(cls) if "codec" in f.metadata}
    named = (
        rules.refs
        + (rules.media.names() if rules.media is not None else ())
        + (rules.custody.names() if rules.custody is not None else ())
        + ((rules.sealed_field,) if rules.sealed_field is not None else ())
    )
    if not set(named) <= body:
        raise _refuse(cls, f"refs, media or custody name fields it does not have: {sorted(set(named) - body)}")


def register(cls: C) -> C:
    """Class decorator: add an event type (checked: see ``docs/adding-an-event-type.md``)."""
    _check_declaration(cls)
    EVENT_TYPES[cls.TYPE] = cls
    return cls


def unregister(cls: type[Event]) -> None:
    """Remove a registered type (tests that declare a throwaway type)."""
    if EVENT_TYPES.get(cls.TYPE) is not cls:
        raise _refuse(cls, "not registered")
    del EVENT_TYPES[cls.TYPE]


def declared(type_name: object) -> Rules | None:
    """The declaration of the registered type named ``type_name`` (None for an unknown name)."""
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    return None if cls is None else cls.RULES


def rules_of(event: Event) -> Rules | None:
    """The declaration of ``event``'s type; None if its class is not the registered one."""
    cls = type(event)
    return cls.RULES if EVENT_TYPES.get(cls.TYPE) is cls else None


def stored_file(event: Event) -> tuple[str, dict[str, str]] | None:
    """(SHA-256, {id field: id}) of the file ``event`` claims is in the footage store (its media's
    ``stored_field`` is true); None for any other event."""
    rules = rules_of(event)
    media = None if rules is None else rules.media
    if media is None or media.stored_field is None or getattr(event, media.stored_field) is not True:
        return None
    return getattr(event, media.sha256_field), {media.id_field: getattr(event, media.id_field)}


def stored_file_size(event: Event) -> int | None:
    """The size in bytes ``event`` declares for the file it claims is in the footage store (its
    media's ``size_field``); None when it claims no stored file or declares no size."""
    rules = rules_of(event)
    media = None if rules is None else rules.media
    if media is None or media.size_field is None or stored_file(event) is None:
        return None
    size = getattr(event, media.size_field)
    return size if type(size) is int else None


def custody_link(event: Event) -> tuple[str, str | None, str, str] | None:
    """(footage id, previous custodian or None, new custodian, purpose) of the custody link
    ``event`` adds (its type's ``custody``); None for any other event."""
    rules = rules_of(event)
    custody = None if rules is None else rules.custody
    if custody is None:
        return None
    return (
        getattr(event, custody.footage_field),
        None if custody.from_field is None else getattr(event, custody.from_field),
        getattr(event, custody.to_field),
        CAPTURE_PURPOSE if custody.purpose_field is None else getattr(event, custody.purpose_field),
    )


def introduced_sealed_ref(event: Event) -> str | None:
    """The sealed record ``event`` brings into its case (its type's ``sealed_field``), or None."""
    rules = rules_of(event)
    name = None if rules is None else rules.sealed_field
    value = None if name is None else getattr(event, name)
    return value.sealed_ref if isinstance(value, SealedReporter) else None


def media_id_fields() -> tuple[str, ...]:
    """The id fields of every declared media file (e.g. footage_id, derivative_id), in type order."""
    ids = (cls.RULES.media.id_field for cls in EVENT_TYPES.values() if cls.RULES.media is not None)
    return tuple(dict.fromkeys(ids))


class TypeNames(AbstractSet[str]):
    """A live, read-only set: the names of the registered types whose declaration passes ``test``."""

    __slots__ = ("_test",)

    def __init__(self, test: Callable[[Rules], bool]) -> None:
        self._test = test

    def _names(self) -> list[str]:
        return [name for name, cls in EVENT_TYPES.items() if self._test(cls.RULES)]

    def __contains__(self, name: object) -> bool:
        cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
        return cls is not None and self._test(cls.RULES)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _from_iterable(cls, items: Iterable[S]) -> frozenset[S]:  # |, &, - give plain frozensets
        return frozenset(items)

    def __repr__(self) -> str:
        return f"TypeNames({self._names()!r})"


CASE_EVENT_TYPES = TypeNames(lambda rules: rules.stream == "case")
REGISTRY_EVENT_TYPES = TypeNames(lambda rules: rules.stream == "registry")
#: a closed case refuses everything else (see ``Rules.when_closed``)
ALLOWED_WHEN_CLOSED = TypeNames(lambda rules: rules.when_closed)


def _scope_label(scope: object) -> str:
    return "whole case" if scope == "case" else f"{len(scope) if isinstance(scope, list) else 0} footage"


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


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class CaseOpened(Event):
    TYPE: ClassVar[str] = "CaseOpened"
    RULES: ClassVar[Rules] = Rules(
        roles=INVESTIGATION,
        effect=lifecycle.open_case,
        opens=True,
        label=lambda b: f"Case {b['case_number']} opened ({b['category']})",
        refs=("case_number", "category"),
    )
    case_number: str = spec(ID)
    category: str = spec(Enum(CATEGORIES))
    summary: str = spec(TEXT)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class ReportReceived(Event):
    TYPE: ClassVar[str] = "ReportReceived"
    RULES: ClassVar[Rules] = Rules(
        roles=INVESTIGATION,
        effect=lifecycle.record_report,
        label=lambda b: f"Report {b['report_id']} received ({b['channel']})",
        refs=("report_id", "channel"),
        sealed_field="reporter",
    )
    report_id: str = spec(ID)
    channel: str = spec(Enum(REPORT_CHANNELS))
    received_at: str = spec(TIMESTAMP)
    location: str = spec(LOCATION)
    observed_agency: str = spec(SHORT)
    narrative: str = spec(NARRATIVE)
    reporter: SealedReporter | None = spec(Nullable(Obj(SealedReporter)))  # noqa: RUF009 (a field())


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class IncidentDocumented(Event):
    TYPE: ClassVar[str] = "IncidentDocumented"
    RULES: ClassVar[Rules] = Rules(
        roles=INVESTIGATION,
        effect=lifecycle.record_incident,
        label=lambda b: f"Incident {b['incident_id']} documented ({', '.join(b['conduct'])})",
        refs=("incident_id",),
    )
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


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class FootageCaptured(Event):
    TYPE: ClassVar[str] = "FootageCaptured"
    RULES: ClassVar[Rules] = Rules(
        roles=INVESTIGATION,
        effect=evidence.capture,
        label=lambda b: f"Footage {b['footage_id']} captured ({b['source']})",
        refs=("footage_id", "source"),
        media=Media(id_field="footage_id", stored_field="stored", size_field="size_bytes"),
        custody=Custody(to_field="custodian"),
    )
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


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class CustodyTransferred(Event):
    TYPE: ClassVar[str] = "CustodyTransferred"
    RULES: ClassVar[Rules] = Rules(
        roles=INVESTIGATION,
        effect=evidence.transfer_custody,
        label=lambda b: f"Custody of footage {b['footage_id']} transferred",
        refs=("footage_id",),
        custody=Custody(from_field="from_custodian", to_field="to_custodian", purpose_field="purpose"),
    )
    footage_id: str = spec(ID)
    from_custodian: str = spec(SHORT)
    to_custodian: str = spec(SHORT)
    purpose: str = spec(TEXT)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class FootageDerivativeCreated(Event):
    TYPE: ClassVar[str] = "FootageDerivativeCreated"
    RULES: ClassVar[Rules] = Rules(
        roles=INVESTIGATION,
        effect=evidence.create_derivative,
        label=lambda b: (
            f"Derivative {b['derivative_id']} ({b['kind']}) created from footage {b['footage_id']}"
        ),
        refs=("derivative_id", "footage_id", "kind"),
        media=Media(id_field="derivative_id"),
    )
    derivative_id: str = spec(ID)
    footage_id: str = spec(ID)
    sha256: str = spec(SHA256)
    size_bytes: int = spec(COUNT)
    kind: str = spec(Enum(DERIVATIVE_KINDS))
    description: str = spec(TEXT)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class InvestigationHoldPlaced(Event):
    TYPE: ClassVar[str] = "InvestigationHoldPlaced"
    RULES: ClassVar[Rules] = Rules(
        roles=INVESTIGATION,
        effect=evidence.place_hold,
        label=lambda b: (
            f"Investigation hold {b['hold_id']} placed by {b['authority']} ({_scope_label(b['scope'])})"
        ),
        refs=("hold_id", "authority"),
    )
    hold_id: str = spec(ID)
    #: "case" or a tuple of footage ids
    scope: str | tuple[str, ...] = spec(Either("case", ListOf(ID, max_len=1000)))
    authority: str = spec(Enum(HOLD_AUTHORITIES))
    reason: str = spec(TEXT)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class InvestigationHoldLifted(Event):
    TYPE: ClassVar[str] = "InvestigationHoldLifted"
    RULES: ClassVar[Rules] = Rules(
        roles=SUPERVISION,
        effect=evidence.lift_hold,
        label=lambda b: f"Investigation hold {b['hold_id']} lifted",
        refs=("hold_id",),
    )
    hold_id: str = spec(ID)
    reason: str = spec(TEXT)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class FootageReleased(Event):
    TYPE: ClassVar[str] = "FootageReleased"
    RULES: ClassVar[Rules] = Rules(
        roles=SUPERVISION,
        effect=evidence.release,
        label=lambda b: (
            f"Footage {b['footage_id']} released ({b['basis']})"
            if b.get("derivative_id") is None
            else f"Derivative {b['derivative_id']} of footage {b['footage_id']} released ({b['basis']})"
        ),
        refs=("footage_id", "derivative_id", "basis"),
    )
    footage_id: str = spec(ID)
    derivative_id: str | None = spec(ID, optional=True)
    sha256: str = spec(SHA256)
    basis: str = spec(Enum(RELEASE_BASES))
    channel: str = spec(SHORT)
    url: str | None = spec(URL, optional=True)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class ReferralMade(Event):
    TYPE: ClassVar[str] = "ReferralMade"
    RULES: ClassVar[Rules] = Rules(
        roles=INVESTIGATION,
        effect=evidence.make_referral,
        label=lambda b: f"Referral {b['referral_id']} made to {b['authority']}",
        refs=("referral_id", "authority"),
    )
    referral_id: str = spec(ID)
    authority: str = spec(ID)
    basis: str = spec(TEXT)
    bundle_sha256: str | None = spec(SHA256, optional=True)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class ReferralAcknowledged(Event):
    TYPE: ClassVar[str] = "ReferralAcknowledged"
    RULES: ClassVar[Rules] = Rules(
        roles=PROSECUTION,
        effect=evidence.acknowledge_referral,
        label=lambda b: f"Referral {b['referral_id']} acknowledged",
        refs=("referral_id",),
    )
    referral_id: str = spec(ID)
    note: str = spec(Text(2000, min_len=0))


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class CaseClosed(Event):
    TYPE: ClassVar[str] = "CaseClosed"
    RULES: ClassVar[Rules] = Rules(roles=SUPERVISION, effect=lifecycle.close, label=lambda b: "Case closed")
    disposition: str = spec(TEXT)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class CaseReopened(Event):
    TYPE: ClassVar[str] = "CaseReopened"
    RULES: ClassVar[Rules] = Rules(
        roles=SUPERVISION, effect=lifecycle.reopen, label=lambda b: "Case reopened", when_closed=True
    )
    reason: str = spec(TEXT)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class EvidenceAccessed(Event):
    """Appended by the server's own service key whenever a file is downloaded."""

    TYPE: ClassVar[str] = "EvidenceAccessed"
    RULES: ClassVar[Rules] = Rules(
        roles=SERVICE,
        effect=evidence.count_access,
        # a download of closed evidence must still leave a trace: access records are never refused
        when_closed=True,
        label=lambda b: (
            f"Footage {b['footage_id']} accessed"
            if b.get("footage_id") is not None
            else f"Derivative {b['derivative_id']} accessed"
        ),
        refs=("footage_id", "derivative_id"),
    )
    footage_id: str | None = spec(ID, optional=True)
    derivative_id: str | None = spec(ID, optional=True)
    actor: str = spec(SHORT)
    purpose: str = spec(TEXT)

    def check(self) -> None:
        if (self.footage_id is None) == (self.derivative_id is None):
            raise invalid("footage_id|derivative_id", "exactly one of footage_id and derivative_id")


# ----------------------------------------------------------------------------- sealed records


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class SealedDisclosureRequested(Event):
    """Asks for a sealed record of the case to be disclosed, with the purpose and legal basis."""

    TYPE: ClassVar[str] = "SealedDisclosureRequested"
    RULES: ClassVar[Rules] = Rules(
        roles=DISCLOSURE,
        effect=sealed.request_disclosure,
        when_closed=True,
        label=lambda b: f"Disclosure {b['request_id']} of sealed record {b['sealed_ref']} requested",
        refs=("request_id", "sealed_ref"),
    )
    request_id: str = spec(ID)
    sealed_ref: str = spec(ID)
    purpose: str = spec(TEXT)
    legal_basis: str = spec(TEXT)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class SealedDisclosureApproved(Event):
    """Approves a disclosure request: by another person than the requester, within the window."""

    TYPE: ClassVar[str] = "SealedDisclosureApproved"
    RULES: ClassVar[Rules] = Rules(
        roles=DISCLOSURE_APPROVAL,
        effect=sealed.approve_disclosure,
        when_closed=True,
        label=lambda b: f"Disclosure {b['request_id']} approved",
        refs=("request_id",),
    )
    request_id: str = spec(ID)


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class SealedRecordDisclosed(Event):
    """Signed by the requester: the ledger unseals the record for them once this is appended."""

    TYPE: ClassVar[str] = "SealedRecordDisclosed"
    RULES: ClassVar[Rules] = Rules(
        roles=DISCLOSURE,
        effect=sealed.disclose,
        when_closed=True,
        label=lambda b: f"Sealed record {b['sealed_ref']} disclosed (request {b['request_id']})",
        refs=("request_id", "sealed_ref"),
    )
    request_id: str = spec(ID)
    sealed_ref: str = spec(ID)
    approvers: tuple[str, ...] = spec(ListOf(SHORT, max_len=20))


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class SealedDisclosureRefused(Event):
    """Appended by the server's own service key for every refused disclosure or approval attempt."""

    TYPE: ClassVar[str] = "SealedDisclosureRefused"
    RULES: ClassVar[Rules] = Rules(
        roles=SERVICE,
        effect=sealed.record_refusal,
        # a refused attempt must leave a trace whatever the case's status
        when_closed=True,
        label=lambda b: f"{b['attempted']} refused ({b['code']})",
        refs=("request_id", "sealed_ref", "attempted", "code"),
    )
    request_id: str | None = spec(ID, optional=True)
    sealed_ref: str | None = spec(ID, optional=True)
    attempted: str = spec(Enum(DISCLOSURE_ATTEMPTS))
    actor: str = spec(SHORT)
    code: str = spec(ID)

    def check(self) -> None:
        if self.request_id is None and self.sealed_ref is None:
            raise invalid("request_id|sealed_ref", "at least one of request_id and sealed_ref")


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class SealedRecordShredded(Event):
    """The record's key is destroyed once this is appended: nothing can unseal it again."""

    TYPE: ClassVar[str] = "SealedRecordShredded"
    RULES: ClassVar[Rules] = Rules(
        roles=SHREDDING,
        effect=sealed.shred,
        when_closed=True,
        label=lambda b: f"Sealed record {b['sealed_ref']} shredded",
        refs=("sealed_ref",),
    )
    sealed_ref: str = spec(ID)
    reason: str = spec(TEXT)


# ----------------------------------------------------------------------------- key registry events


def key_id_for(raw_public_key: bytes) -> str:
    """The key id: SHA-256 (lowercase hex) of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(raw_public_key).hexdigest()


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRegistered(Event):
    TYPE: ClassVar[str] = "KeyRegistered"
    RULES: ClassVar[Rules] = Rules(
        roles=ADMINISTRATION,
        effect=keys.register,
        stream="registry",
        label=lambda b: f"Key {b['key_id'][:16]} registered ({b['role']})",
        refs=("key_id", "role"),
    )
    key_id: str = spec(SHA256)
    public_key: str = spec(PublicKey())
    actor: str = spec(SHORT)
    role: str = spec(Enum(ROLES))
    authority: str | None = spec(ID, optional=True)
    valid_from: str = spec(TIMESTAMP)

    def check(self) -> None:
        if key_id_for(base64.b64decode(self.public_key)) != self.key_id:
            raise invalid("key_id", "the SHA-256 (lowercase hex) of the raw public_key bytes")


@register
@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRevoked(Event):
    TYPE: ClassVar[str] = "KeyRevoked"
    RULES: ClassVar[Rules] = Rules(
        roles=ADMINISTRATION,
        effect=keys.revoke,
        stream="registry",
        label=lambda b: f"Key {b['key_id'][:16]} revoked",
        refs=("key_id",),
    )
    key_id: str = spec(SHA256)
    reason: str = spec(TEXT)
    compromised_since: str | None = spec(TIMESTAMP, optional=True)


def unknown_type(type_name: object, type_version: object) -> InvalidEventError:
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
        raise unknown_type(type_name, type_version)
    event: Event = parse_fields(cls, body)
    event.check()
    return event
