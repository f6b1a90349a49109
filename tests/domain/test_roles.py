"""The role table is data, and authorize() enforces it."""

from __future__ import annotations

import pytest

from domain.errors import AuthorizationError
from domain.events import CASE_EVENT_TYPES, EVENT_TYPES, REGISTRY_EVENT_TYPES
from domain.roles import ALLOWED, ROLES, authorize, is_allowed

SUPERVISOR_ONLY = {
    "FootageReleased", "InvestigationHoldLifted", "CaseClosed", "CaseReopened", "SealedDisclosureApproved",
    "SealedRecordShredded",
}
#: what counsel may do: ask for, approve and receive a disclosure, and shred
COUNSEL = {"SealedDisclosureRequested", "SealedDisclosureApproved", "SealedRecordDisclosed", "SealedRecordShredded"}


def test_table_covers_every_role_and_only_known_event_types() -> None:
    assert set(ALLOWED) == set(ROLES)
    for allowed in ALLOWED.values():
        assert allowed <= set(EVENT_TYPES)


def test_table_contents() -> None:
    investigator = ALLOWED["investigator"]
    service_only = {"EvidenceAccessed", "SealedDisclosureRefused"}
    assert investigator == CASE_EVENT_TYPES - SUPERVISOR_ONLY - {"ReferralAcknowledged"} - service_only
    assert ALLOWED["supervisor"] == investigator | SUPERVISOR_ONLY
    assert ALLOWED["prosecutor"] == {"ReferralAcknowledged"}
    assert ALLOWED["admin"] == REGISTRY_EVENT_TYPES
    assert ALLOWED["service"] == service_only | {"SealedRecordShredded"}
    assert ALLOWED["counsel"] == COUNSEL
    assert ALLOWED["auditor"] == frozenset()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_authorize_matches_table(role: str, event_type: str) -> None:
    if event_type in ALLOWED[role]:
        authorize(role, event_type)
        assert is_allowed(role, event_type)
        return
    with pytest.raises(AuthorizationError) as info:
        authorize(role, event_type)
    assert info.value.code == "ROLE_NOT_ALLOWED"
    assert info.value.refs == {"role": role, "event_type": event_type}


def test_unknown_role_is_not_echoed() -> None:
    with pytest.raises(AuthorizationError) as info:
        authorize("CANARY-7f3a", "CaseOpened")
    assert info.value.code == "ROLE_NOT_ALLOWED" and "CANARY-7f3a" not in str(info.value)
    assert info.value.refs["role"] is None


def test_table_refuses_an_unknown_role_by_name() -> None:
    with pytest.raises(KeyError) as info:
        ALLOWED["mayor"]
    assert info.value.args == ("mayor",)
    assert "mayor" not in ALLOWED and ALLOWED.get("mayor") is None


def test_table_repr_shows_each_role_with_its_types() -> None:
    shown = repr(ALLOWED)
    assert shown.startswith("RoleTable({") and shown.endswith("})")
    assert "'auditor': frozenset()" in shown and "'prosecutor': frozenset({'ReferralAcknowledged'})" in shown
