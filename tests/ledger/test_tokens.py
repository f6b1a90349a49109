"""API tokens: ``elt_<16 hex id>_<43 url-safe secret>``. The secret's alphabet includes ``_`` and ``-``,
so the token is parsed by its fixed shape, never split on ``_``."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from domain.errors import MalformedInputError
from ledger.store import Ledger, utc_now
from ledger.tokens import TokenStore, token_id_of
from tests.support.cases import Actors

ID_PART = "0123456789abcdef"


@pytest.mark.parametrize("secret", ["_" * 43, "-" * 43, "_a" + "b" * 41, "a" * 42 + "_"])
def test_the_id_is_read_by_shape_whatever_the_secret_holds(secret: str) -> None:
    assert token_id_of(f"elt_{ID_PART}_{secret}") == ID_PART


@pytest.mark.parametrize(
    "token",
    [f"elt_{ID_PART}_{'a' * 42}", f"elt_{ID_PART}_{'a' * 44}", f"elt_{ID_PART}_{'a' * 43}\n", f"elt_{ID_PART[:-1]}_{'a' * 44}"],
)
def test_anything_else_is_not_a_token(token: str) -> None:
    with pytest.raises(MalformedInputError):
        token_id_of(token)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("first", ["_", "-"])
def test_a_token_whose_secret_starts_with_a_separator_works(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    Actors.register(ledger)
    store = TokenStore(ledger.db, ledger.mac, authorities=("middlesex_da",), registry=ledger.registry_state)
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: first + "x" * 42)
    issued = store.issue(actor="Det. A. Rivera", role="investigator", authority=None,
                         expires_in=timedelta(days=1), now=utc_now())
    assert issued.token.endswith(f"_{first}{'x' * 42}")
    assert store.verify(issued.token, now=utc_now()) == issued.record
    assert store.verify(issued.token[:-1] + "y", now=utc_now()) is None
