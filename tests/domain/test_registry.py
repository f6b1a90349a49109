"""Key registry: trust root, admin-only signing, key lifecycle and status over time."""

from __future__ import annotations

import base64

import pytest

from domain.context import DomainConfig
from domain.errors import AuthorizationError, LedgerError, MalformedInputError, RuleViolation
from domain.registry import KeyRegistryState, apply_registry
from tests.support.domain import ctx, ev, key, registry_ctx, registry_with_root, ts

ROOT = key(1)[0]


def register(
    state: KeyRegistryState, n: int, seq: int, signer: str = ROOT, **overrides: object
) -> KeyRegistryState:
    key_id, b64 = key(n)
    event = ev("KeyRegistered", key_id=key_id, public_key=b64, **overrides)
    return apply_registry(state, event, registry_ctx(seq, signer))


def refused(
    state: KeyRegistryState | None, event_type: str, seq: int, signer: str = ROOT, **kw: object
) -> LedgerError:
    with pytest.raises(LedgerError) as info:
        apply_registry(state, ev(event_type, **kw), registry_ctx(seq, signer))
    return info.value


def test_trust_root_is_a_self_signed_admin_key() -> None:
    state = registry_with_root()
    info = state.lookup(ROOT)
    assert state.root_key_id == ROOT and state.version == 0
    assert info is not None and (info.role, info.authority, info.registered_seq) == ("admin", None, 0)
    assert info.public_key == bytes([1]) * 32
    assert base64.b64decode(info.public_key_b64) == info.public_key
    assert state.key_status_at(ROOT, ts(1)) == "active"


@pytest.mark.parametrize(
    ("event_type", "signer", "overrides"),
    [
        ("KeyRegistered", key(2)[0], {}),  # not self-signed
        ("KeyRegistered", ROOT, {"role": "supervisor"}),  # not an admin
        ("KeyRevoked", ROOT, {}),  # not a registration
    ],
)
def test_trust_root_required(event_type: str, signer: str, overrides: dict[str, object]) -> None:
    exc = refused(None, event_type, 0, signer, **overrides)
    assert isinstance(exc, RuleViolation)
    assert (exc.code, exc.refs["signer_key_id"]) == ("TRUST_ROOT_REQUIRED", signer)


def test_trust_root_must_not_have_an_authority() -> None:
    exc = refused(None, "KeyRegistered", 0, authority="middlesex_da")
    assert (exc.code, exc.refs["key_id"]) == ("INVALID_AUTHORITY", ROOT)


def test_admin_registers_and_revokes_keys() -> None:
    state = register(registry_with_root(), 2, 1, role="supervisor", actor="sgt-a")
    state = register(state, 3, 2, role="prosecutor", authority="middlesex_da", actor="ada-b")
    info = state.lookup(key(3)[0])
    assert info is not None and (info.role, info.authority, info.actor) == (
        "prosecutor",
        "middlesex_da",
        "ada-b",
    )
    event = ev("KeyRevoked", key_id=key(2)[0], compromised_since=ts(1))
    state = apply_registry(state, event, registry_ctx(3, ROOT))
    revoked = state.lookup(key(2)[0])
    assert revoked is not None and (revoked.revoked, revoked.revoked_seq, revoked.revoked_at) == (
        True,
        3,
        ts(3),
    )
    assert revoked.revocation_reason == "rotation" and revoked.compromised_since == ts(1)
    assert state.version == 3 and state.updated_at == ts(3)
    assert [k.key_id for k in state.active_keys(ts(4))] == [ROOT, key(3)[0]]
    assert [k.key_id for k in state.active_keys(ts(4), role="prosecutor")] == [key(3)[0]]


def test_key_already_registered() -> None:
    state = register(registry_with_root(), 2, 1)
    exc = refused(state, "KeyRegistered", 2, key_id=key(2)[0], public_key=key(2)[1])
    assert (exc.code, exc.refs["key_id"]) == ("KEY_ALREADY_REGISTERED", key(2)[0])


def test_unknown_key_and_already_revoked() -> None:
    state = register(registry_with_root(), 2, 1)
    exc = refused(state, "KeyRevoked", 2, key_id=key(9)[0])
    assert (exc.code, exc.refs["key_id"]) == ("UNKNOWN_KEY", key(9)[0])
    state = apply_registry(state, ev("KeyRevoked", key_id=key(2)[0]), registry_ctx(2, ROOT))
    exc = refused(state, "KeyRevoked", 3, key_id=key(2)[0])
    assert (exc.code, exc.refs["key_id"]) == ("KEY_ALREADY_REVOKED", key(2)[0])


@pytest.mark.parametrize(
    ("role", "authority"),
    [("prosecutor", None), ("prosecutor", "us_attorney"), ("supervisor", "middlesex_da"), ("admin", "cpd")],
)
def test_invalid_authority(role: str, authority: str | None) -> None:
    key_id, b64 = key(4)
    exc = refused(
        registry_with_root(),
        "KeyRegistered",
        1,
        key_id=key_id,
        public_key=b64,
        role=role,
        authority=authority,
    )
    assert (exc.code, exc.refs["key_id"], exc.refs["role"]) == ("INVALID_AUTHORITY", key_id, role)


def test_configured_authorities_apply_to_prosecutor_keys() -> None:
    key_id, b64 = key(4)
    event = ev("KeyRegistered", key_id=key_id, public_key=b64, role="prosecutor", authority="us_attorney")
    config = DomainConfig(authorities=("us_attorney",))
    state = apply_registry(registry_with_root(), event, registry_ctx(1, ROOT), config)
    assert state.lookup(key_id) is not None


@pytest.mark.parametrize("case", ["unknown_signer", "non_admin_signer", "revoked_admin"])
def test_only_an_active_admin_key_signs(case: str) -> None:
    state = register(registry_with_root(), 2, 1, role="supervisor")
    state = register(state, 3, 2, role="admin")
    signer = {"unknown_signer": key(9)[0], "non_admin_signer": key(2)[0], "revoked_admin": key(3)[0]}[case]
    if case == "revoked_admin":
        state = apply_registry(state, ev("KeyRevoked", key_id=key(3)[0]), registry_ctx(3, ROOT))
    key_id, b64 = key(5)
    exc = refused(state, "KeyRegistered", 4, signer, key_id=key_id, public_key=b64)
    assert isinstance(exc, AuthorizationError)
    assert exc.code == "ROLE_NOT_ALLOWED"


def test_second_admin_can_sign_and_root_can_be_revoked() -> None:
    state = register(registry_with_root(), 3, 1, role="admin")
    state = apply_registry(state, ev("KeyRevoked", key_id=ROOT), registry_ctx(2, key(3)[0]))
    assert state.key_status_at(ROOT, ts(3)) == "revoked"
    state = register(state, 4, 3, signer=key(3)[0], role="auditor")
    assert state.lookup(key(4)[0]) is not None


def test_wrong_stream() -> None:
    exc = refused(registry_with_root(), "CaseOpened", 1)
    assert (exc.code, exc.refs["event_type"]) == ("WRONG_STREAM", "CaseOpened")
    with pytest.raises(RuleViolation) as info:
        apply_registry(None, ev("KeyRegistered"), ctx(0, role="admin", signer=ROOT))
    assert info.value.code == "WRONG_STREAM"


def test_key_status_over_time() -> None:
    state = register(registry_with_root(), 2, 10, valid_from=ts(20))  # registered at ts(10)
    kid = key(2)[0]
    assert state.key_status_at(key(9)[0], ts(30)) == "unknown"
    assert state.key_status_at(kid, ts(15)) == "not_yet_valid"
    assert state.key_status_at(kid, ts(25)) == "active"
    state = apply_registry(state, ev("KeyRevoked", key_id=kid), registry_ctx(40, ROOT))
    assert state.key_status_at(kid, ts(30)) == "active"  # historical signatures stay good
    assert state.key_status_at(kid, ts(40)) == "revoked"
    state2 = register(registry_with_root(), 2, 10, valid_from=ts(0))  # back-dated valid_from
    assert state2.key_status_at(kid, ts(5)) == "not_yet_valid"
    state2 = apply_registry(
        state2, ev("KeyRevoked", key_id=kid, compromised_since=ts(30)), registry_ctx(40, ROOT)
    )
    assert state2.key_status_at(kid, ts(29)) == "active"
    assert state2.key_status_at(kid, ts(30)) == "compromised"
    assert state2.key_status_at(kid, ts(50)) == "compromised"


def test_registry_json_round_trip() -> None:
    state = register(registry_with_root(), 3, 1, role="prosecutor", authority="massachusetts_ag")
    state = apply_registry(
        state, ev("KeyRevoked", key_id=key(3)[0], compromised_since=ts(0)), registry_ctx(2, ROOT)
    )
    data = state.to_json()
    assert data["schema"] == "key-registry/1"
    assert KeyRegistryState.from_json(data) == state
    assert KeyRegistryState.from_json(data).to_json() == data
    with pytest.raises(MalformedInputError):
        KeyRegistryState.from_json({**data, "schema": "nope"})
    with pytest.raises(MalformedInputError):
        KeyRegistryState.from_json({**data, "keys": [{"key_id": ROOT}]})
