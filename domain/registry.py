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

from dataclasses import replace

from domain.context import REGISTRY_STREAM_ID, DomainConfig, EventContext
from domain.errors import AuthorizationError
from domain.events import Event, KeyRegistered, rules_of
from domain.registry_state import (
    KEY_STATUSES,
    REGISTRY_SCHEMA,
    KeyInfo,
    KeyRegistryState,
    check_authority,
    key_info,
    violation,
)
from domain.roles import authorize

__all__ = ["KEY_STATUSES", "REGISTRY_SCHEMA", "KeyInfo", "KeyRegistryState", "apply_registry"]


def _trust_root(event: Event, ctx: EventContext, config: DomainConfig) -> KeyRegistryState:
    if not (isinstance(event, KeyRegistered) and event.role == "admin" and ctx.signer_key_id == event.key_id):
        raise violation(
            "the registry must start with a self-signed KeyRegistered of an admin key",
            "TRUST_ROOT_REQUIRED",
            signer_key_id=ctx.signer_key_id,
        )
    check_authority(event, config)
    return KeyRegistryState(
        root_key_id=event.key_id,
        version=ctx.seq,
        updated_at=ctx.occurred_at,
        keys=(key_info(event, ctx),),
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


def apply_registry(
    state: KeyRegistryState | None, event: Event, ctx: EventContext, config: DomainConfig | None = None
) -> KeyRegistryState:
    """Validate a registry event and return the next registry state (pure)."""
    config = config or DomainConfig()
    rules = rules_of(event)
    if rules is None or rules.stream != "registry" or ctx.case_id != REGISTRY_STREAM_ID:
        raise violation(
            "key registry events and case events live in different streams",
            "WRONG_STREAM",
            case_id=ctx.case_id,
            event_type=event.TYPE,
        )
    if state is None:
        return _trust_root(event, ctx, config)
    _authorize_signer(state, event, ctx)
    new: KeyRegistryState = rules.effect(state, event, ctx, config)
    return replace(new, version=ctx.seq, updated_at=ctx.occurred_at)
