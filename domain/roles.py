"""Who may append what. Each event type declares its roles (``Rules.roles`` in
:mod:`domain.events`); :data:`ALLOWED` is the role table derived from those declarations.

The signer's role comes from the key registry (see :mod:`domain.registry`); the ledger copies it
into :class:`domain.context.EventContext`. Authorities for prosecutors are checked by the rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from domain.errors import AuthorizationError
from domain.events import EVENT_TYPES
from domain.vocabulary import ROLES

__all__ = ["ALLOWED", "ROLES", "RoleTable", "authorize", "is_allowed", "roles_for", "who_may"]


class RoleTable(Mapping[str, frozenset[str]]):
    """A live, read-only view: role -> the names of the registered types it may append."""

    __slots__ = ()

    def __getitem__(self, role: str) -> frozenset[str]:
        if role not in ROLES:
            raise KeyError(role)
        return frozenset(name for name, cls in EVENT_TYPES.items() if role in cls.RULES.roles)

    def __iter__(self) -> Iterator[str]:
        return iter(ROLES)

    def __len__(self) -> int:
        return len(ROLES)

    def __repr__(self) -> str:
        return f"RoleTable({dict(self)!r})"


ALLOWED: Mapping[str, frozenset[str]] = RoleTable()


def is_allowed(role: str, event_type: str) -> bool:
    cls = EVENT_TYPES.get(event_type)
    return cls is not None and role in cls.RULES.roles


def roles_for(event_type: str) -> tuple[str, ...]:
    """The roles that may append ``event_type``, in the order of :data:`ROLES` (from its declaration)."""
    cls = EVENT_TYPES.get(event_type)
    return () if cls is None else tuple(r for r in ROLES if r in cls.RULES.roles)


def who_may(event_type: str) -> str:
    """``only a supervisor or an admin may`` for messages; from the type's declared roles."""
    roles = roles_for(event_type)
    if not roles:
        return "no role may"
    named = " or ".join(f"'{r}'" for r in roles)
    return f"only a key of role {named} may"


def authorize(role: str, event_type: str) -> None:
    """Raise ``AuthorizationError(code="ROLE_NOT_ALLOWED")`` unless ``role`` may append ``event_type``."""
    if not is_allowed(role, event_type):
        known = role in ROLES
        raise AuthorizationError(
            f"role {role!r} may not append {event_type!r}; {who_may(event_type)}"
            if known
            else f"unknown role; it may not append {event_type!r}; {who_may(event_type)}",
            code="ROLE_NOT_ALLOWED",
            role=role if known else None,
            event_type=event_type,
        )
