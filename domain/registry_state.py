"""The key registry's state and the effects of its events (registering and revoking a key).

The effects are named by the registry event types' declarations (``Rules.effect`` in
:mod:`domain.events`) and called by :func:`domain.registry.apply_registry` after the registry's own
checks (stream, trust root, an active admin signer). The event types are imported for annotations
only: :mod:`domain.events` imports this module.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from domain.context import DomainConfig, EventContext
from domain.errors import RuleViolation
from domain.fields import timestamp_key
from domain.records import Record, malformed_state

if TYPE_CHECKING:
    from domain.events import KeyRegistered, KeyRevoked

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


def violation(message: str, code: str, **refs: object) -> RuleViolation:
    return RuleViolation(message, code=code, **refs)


def check_authority(event: KeyRegistered, config: DomainConfig) -> None:
    if event.role == "prosecutor":
        ok = event.authority is not None and event.authority in config.authorities
    else:
        ok = event.authority is None
    if not ok:
        raise violation(
            "prosecutor keys need a configured authority; other keys must have none",
            "INVALID_AUTHORITY",
            key_id=event.key_id,
            role=event.role,
        )


def key_info(event: KeyRegistered, ctx: EventContext) -> KeyInfo:
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


def register(
    state: KeyRegistryState, event: KeyRegistered, ctx: EventContext, config: DomainConfig
) -> KeyRegistryState:
    if state.lookup(event.key_id) is not None:
        raise violation("this key is already registered", "KEY_ALREADY_REGISTERED", key_id=event.key_id)
    check_authority(event, config)
    return replace(state, keys=(*state.keys, key_info(event, ctx)))


def revoke(
    state: KeyRegistryState, event: KeyRevoked, ctx: EventContext, _: DomainConfig
) -> KeyRegistryState:
    info = state.lookup(event.key_id)
    if info is None:
        raise violation(
            "no key with this id is registered (evidence-ledger keys list, or GET /v1/keys, lists them)",
            "UNKNOWN_KEY",
            key_id=event.key_id,
        )
    if info.revoked:
        raise violation("this key is already revoked", "KEY_ALREADY_REVOKED", key_id=event.key_id)
    revoked = replace(
        info,
        revoked=True,
        revoked_at=ctx.occurred_at,
        revoked_seq=ctx.seq,
        revocation_reason=event.reason,
        compromised_since=event.compromised_since,
    )
    return replace(state, keys=tuple(revoked if k.key_id == event.key_id else k for k in state.keys))
