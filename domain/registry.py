"""The key registry: which Ed25519 keys may sign, for whom, in which role, and since when.

The registry is its own stream (case id = :data:`REGISTRY_STREAM_ID`). Its first event must be a
self-signed ``KeyRegistered`` of an admin key: the trust root. After that only a key that is
*active* (see :meth:`KeyRegistryState.key_status_at`) and has the admin role may sign registry
events. The signer's role is taken from this state, not from ``ctx.role``: the ledger cannot know
the role of the trust root before it is registered.

The ledger uses :meth:`KeyRegistryState.lookup` / :meth:`key_status_at` to fill ``EventContext``
for case events (actor, role, authority) and to refuse keys that are not ``"active"``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from domain.context import REGISTRY_STREAM_ID, DomainConfig, EventContext
from domain.errors import AuthorizationError, RuleViolation
from domain.events import REGISTRY_EVENT_TYPES, Event, KeyRegistered, KeyRevoked
from domain.fields import timestamp_key
from domain.records import Record, malformed_state
from domain.roles import authorize

REGISTRY_SCHEMA = "key-registry/1"
KEY_STATUSES = ("unknown", "not_yet_valid", "active", "revoked", "compromised")


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyInfo(Record):
    key_id: str
    public_key_b64: str
    actor: str
    role: str
    authority: str | None
    valid_from: str
    registered_at: str
    registered_seq: int
    revoked: bool = False
    revoked_at: str | None = None
    revoked_seq: int | None = None
    revocation_reason: str | None = None
    compromised_since: str | None = None

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return base64.b64decode(self.public_key_b64)

    def status_at(self, at: str) -> str:
        """``not_yet_valid`` | ``active`` | ``revoked`` | ``compromised`` at instant ``at``.

        A key is valid from max(valid_from, registered_at): back-dating ``valid_from`` never makes
        a key valid before the registry learned of it. From ``compromised_since`` on it is
        ``compromised`` (even before the revocation was recorded); from ``revoked_at`` on it is
        ``revoked``.
        """
        when = timestamp_key(at)
        if when < timestamp_key(self.valid_from) or when < timestamp_key(self.registered_at):
            return "not_yet_valid"
        if self.compromised_since is not None and when >= timestamp_key(self.compromised_since):
            return "compromised"
        if self.revoked_at is not None and when >= timestamp_key(self.revoked_at):
            return "revoked"
        return "active"


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRegistryState(Record):
    NESTED: ClassVar[dict[str, type[Record]]] = {"keys": KeyInfo}
    root_key_id: str
    version: int
    updated_at: str
    keys: tuple[KeyInfo, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"schema": REGISTRY_SCHEMA, **Record.to_json(self)}

    @classmethod
    def from_json(cls, data: object) -> KeyRegistryState:
        if not isinstance(data, dict) or data.get("schema") != REGISTRY_SCHEMA:
            raise malformed_state("KeyRegistryState", f"an object with schema {REGISTRY_SCHEMA!r}")
        return super(KeyRegistryState, cls).from_json({k: v for k, v in data.items() if k != "schema"})

    def lookup(self, key_id: str) -> KeyInfo | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    def key_status_at(self, key_id: str, at: str) -> str:
        """One of :data:`KEY_STATUSES` for ``key_id`` at RFC 3339 instant ``at``."""
        info = self.lookup(key_id)
        return "unknown" if info is None else info.status_at(at)

    def active_keys(self, at: str, role: str | None = None) -> tuple[KeyInfo, ...]:
        return tuple(k for k in self.keys if k.status_at(at) == "active" and role in (None, k.role))


def _violation(message: str, code: str, **refs: object) -> RuleViolation:
    return RuleViolation(message, code=code, **refs)


def _check_authority(event: KeyRegistered, config: DomainConfig) -> None:
    if event.role == "prosecutor":
        ok = event.authority is not None and event.authority in config.authorities
    else:
        ok = event.authority is None
    if not ok:
        raise _violation(
            "prosecutor keys need a configured authority; other keys must have none",
            "INVALID_AUTHORITY",
            key_id=event.key_id,
            role=event.role,
        )


def _key_info(event: KeyRegistered, ctx: EventContext) -> KeyInfo:
    return KeyInfo(
        key_id=event.key_id,
        public_key_b64=event.public_key,
        actor=event.actor,
        role=event.role,
        authority=event.authority,
        valid_from=event.valid_from,
        registered_at=ctx.occurred_at,
        registered_seq=ctx.seq,
    )


def _trust_root(event: Event, ctx: EventContext, config: DomainConfig) -> KeyRegistryState:
    if not (isinstance(event, KeyRegistered) and event.role == "admin" and ctx.signer_key_id == event.key_id):
        raise _violation(
            "the registry must start with a self-signed KeyRegistered of an admin key",
            "TRUST_ROOT_REQUIRED",
            signer_key_id=ctx.signer_key_id,
        )
    _check_authority(event, config)
    return KeyRegistryState(
        root_key_id=event.key_id,
        version=ctx.seq,
        updated_at=ctx.occurred_at,
        keys=(_key_info(event, ctx),),
    )


def _authorize_signer(state: KeyRegistryState, event: Event, ctx: EventContext) -> None:
    signer = state.lookup(ctx.signer_key_id)
    if signer is None or signer.status_at(ctx.occurred_at) != "active":
        raise AuthorizationError(
            "only an active admin key may sign key registry events",
            code="ROLE_NOT_ALLOWED",
            signer_key_id=ctx.signer_key_id,
            event_type=event.TYPE,
        )
    authorize(signer.role, event.TYPE)


def _register(
    state: KeyRegistryState, event: KeyRegistered, ctx: EventContext, config: DomainConfig
) -> tuple[KeyInfo, ...]:
    if state.lookup(event.key_id) is not None:
        raise _violation("this key is already registered", "KEY_ALREADY_REGISTERED", key_id=event.key_id)
    _check_authority(event, config)
    return (*state.keys, _key_info(event, ctx))


def _revoke(state: KeyRegistryState, event: KeyRevoked, ctx: EventContext) -> tuple[KeyInfo, ...]:
    info = state.lookup(event.key_id)
    if info is None:
        raise _violation("no key with this id is registered", "UNKNOWN_KEY", key_id=event.key_id)
    if info.revoked:
        raise _violation("this key is already revoked", "KEY_ALREADY_REVOKED", key_id=event.key_id)
    revoked = replace(
        info,
        revoked=True,
        revoked_at=ctx.occurred_at,
        revoked_seq=ctx.seq,
        revocation_reason=event.reason,
        compromised_since=event.compromised_since,
    )
    return tuple(revoked if k.key_id == event.key_id else k for k in state.keys)


def apply_registry(
    state: KeyRegistryState | None, event: Event, ctx: EventContext, config: DomainConfig | None = None
) -> KeyRegistryState:
    """Validate a registry event and return the next registry state (pure)."""
    config = config or DomainConfig()
    if event.TYPE not in REGISTRY_EVENT_TYPES or ctx.case_id != REGISTRY_STREAM_ID:
        raise _violation(
            "key registry events and case events live in different streams",
            "WRONG_STREAM",
            case_id=ctx.case_id,
            event_type=event.TYPE,
        )
    if state is None:
        return _trust_root(event, ctx, config)
    _authorize_signer(state, event, ctx)
    if isinstance(event, KeyRegistered):
        keys = _register(state, event, ctx, config)
    else:
        assert isinstance(event, KeyRevoked)
        keys = _revoke(state, event, ctx)
    return replace(state, keys=keys, version=ctx.seq, updated_at=ctx.occurred_at)
