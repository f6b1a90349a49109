"""Who may append what: the role table as data.

The signer's role comes from the key registry (see :mod:`domain.registry`); the ledger copies it
into :class:`domain.context.EventContext`. Authorities for prosecutors are checked by the rules.
"""

from __future__ import annotations

from domain.errors import AuthorizationError

ROLES: tuple[str, ...] = ("investigator", "supervisor", "auditor", "prosecutor", "admin", "service")

_INVESTIGATOR: frozenset[str] = frozenset(
    {
        "CaseOpened",
        "ReportReceived",
        "IncidentDocumented",
        "FootageCaptured",
        "CustodyTransferred",
        "FootageDerivativeCreated",
        "InvestigationHoldPlaced",
        "ReferralMade",
    }
)

ALLOWED: dict[str, frozenset[str]] = {
    "investigator": _INVESTIGATOR,
    "supervisor": _INVESTIGATOR
    | {"FootageReleased", "InvestigationHoldLifted", "CaseClosed", "CaseReopened"},
    "prosecutor": frozenset({"ReferralAcknowledged"}),
    "admin": frozenset({"KeyRegistered", "KeyRevoked"}),
    "service": frozenset({"EvidenceAccessed"}),
    "auditor": frozenset(),
}


def is_allowed(role: str, event_type: str) -> bool:
    return event_type in ALLOWED.get(role, frozenset())


def authorize(role: str, event_type: str) -> None:
    """Raise ``AuthorizationError(code="ROLE_NOT_ALLOWED")`` unless ``role`` may append ``event_type``."""
    if not is_allowed(role, event_type):
        raise AuthorizationError(
            f"role {role!r} may not append {event_type!r}"
            if role in ALLOWED
            else f"unknown role; it may not append {event_type!r}",
            code="ROLE_NOT_ALLOWED",
            role=role if role in ALLOWED else None,
            event_type=event_type,
        )
