"""The key registry's parse is reused while its checked row is unchanged (a token-cache miss then costs
the row's read and check, not a parse of every key), and nothing else about the check changes: every
call still reads the row and checks its MAC and its version against the log, so an edited or restored
row is refused, and a revoked key or token stops working on the next miss."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from ledger import store as store_module
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.storage.integrity import StateTampered
from ledger.store import Ledger
from ledger.tokens import TokenStore, token_id_of
from tests.support.audit import Raw
from tests.support.cases import Actors

RIVERA = "Det. A. Rivera"  # the investigator of tests.support.cases.ROLES


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy on the registry parse: every parse of a registry state column is recorded."""
    parsed: list[str] = []
    real: Callable[[str, str], Any] = store_module.load_state

    def spy(case_id: str, state_json: str) -> Any:
        if case_id == REGISTRY_CASE_ID:
            parsed.append(state_json)
        return real(case_id, state_json)

    monkeypatch.setattr(store_module, "load_state", spy)
    return parsed


def _store(ledger: Ledger, ticks: list[float], cache_seconds: float = 2.0) -> TokenStore:
    return TokenStore(ledger.db, ledger.mac, authorities=("middlesex_da",), registry=ledger.registry_state,
                      cache_seconds=cache_seconds, monotonic=lambda: ticks[0])


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_parse_is_reused_until_the_registry_changes(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    actors = Actors.register(ledger)
    parsed = _count_parses(monkeypatch)
    store = _store(ledger, [0.0], cache_seconds=0)  # every check a miss
    token = store.issue(actor=RIVERA, role="investigator", authority=None, expires_in=timedelta(days=1),
                        now=ledger.clock()).token
    for _ in range(5):
        assert store.verify(token, now=ledger.clock()) is not None
    first = ledger.registry_state()
    assert len(parsed) == 1  # issue, five misses and a direct read: one parse
    assert ledger.registry_state() is first

    actors.revoke("supervisor")  # the registry moves on: its new row is parsed once
    after = ledger.registry_state()
    assert len(parsed) == 2 and after is not first
    assert after.version == first.version + 1
    assert store.verify(token, now=ledger.clock()) is not None
    assert ledger.public_statistics()["months"] is not None  # the statistics read the same parse
    assert len(parsed) == 2


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_revoked_key_or_token_stops_working_on_the_next_miss(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    actors = Actors.register(ledger)
    parsed = _count_parses(monkeypatch)
    ticks = [1000.0]
    store = _store(ledger, ticks)
    issue = dict(actor=RIVERA, role="investigator", authority=None, expires_in=timedelta(days=1))
    keyed, revoked = (store.issue(**issue, now=ledger.clock()).token for _ in range(2))  # type: ignore[arg-type]
    assert store.verify(keyed, now=ledger.clock()) is not None
    assert store.verify(revoked, now=ledger.clock()) is not None
    ticks[0] += 2.01
    for token in (keyed, revoked):
        assert store.verify(token, now=ledger.clock()) is not None  # misses, served by the reused parse
    assert len(parsed) == 1

    other = TokenStore(ledger.db, ledger.mac, authorities=("middlesex_da",), registry=ledger.registry_state)
    other.revoke(token_id_of(revoked), now=ledger.clock())  # as `evidence-ledger tokens revoke`
    assert store.verify(revoked, now=ledger.clock()) is not None  # within the cache window, as documented
    ticks[0] += 2.01
    assert store.verify(revoked, now=ledger.clock()) is None
    assert store.verify(keyed, now=ledger.clock()) is not None  # a miss too: cached until the next tick

    actors.revoke("investigator")
    assert store.verify(keyed, now=ledger.clock()) is not None  # within the cache window
    ticks[0] += 2.01
    assert store.verify(keyed, now=ledger.clock()) is None  # the key's revocation reached the token
    assert len(parsed) == 2


def _state_row(raw: Raw) -> tuple[Any, ...]:
    (row,) = raw.run("SELECT * FROM case_state WHERE case_id = ?", (REGISTRY_CASE_ID,))
    return row


def _put_state_row(raw: Raw, row: tuple[Any, ...]) -> None:
    raw.run("DELETE FROM case_state WHERE case_id = ?", (REGISTRY_CASE_ID,))
    raw.run(f"INSERT INTO case_state VALUES ({', '.join('?' * len(row))})", row)


def _edit_state(raw: Raw, change: Callable[[dict[str, Any]], None]) -> None:
    (row,) = raw.run("SELECT state FROM case_state WHERE case_id = ?", (REGISTRY_CASE_ID,))
    state = json.loads(row[0])
    change(state)
    raw.run("UPDATE case_state SET state = ? WHERE case_id = ?",
            (json.dumps(state, sort_keys=True, separators=(",", ":")), REGISTRY_CASE_ID))


def _refused(ledger: Ledger, store: TokenStore, token: str, ticks: list[float]) -> None:
    ticks[0] += 2.01  # past the token cache: the next check is a miss
    with pytest.raises(StateTampered) as refused:
        store.verify(token, now=ledger.clock())
    assert refused.value.code == "STATE_TAMPERED" and refused.value.refs == {"stream": "registry"}
    with pytest.raises(StateTampered):
        ledger.registry_state()


def test_an_edited_or_restored_registry_row_is_refused_though_its_parse_was_cached(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    raw = Raw(ledger)
    ticks = [1000.0]
    store = _store(ledger, ticks)
    token = store.issue(actor=RIVERA, role="investigator", authority=None, expires_in=timedelta(days=1),
                        now=ledger.clock()).token
    assert store.verify(token, now=ledger.clock()) is not None  # the registry's parse is now kept
    good = _state_row(raw)

    _edit_state(raw, lambda s: s["keys"].reverse())  # the same keys, edited text: fails the MAC
    _refused(ledger, store, token, ticks)
    _put_state_row(raw, good)
    assert store.verify(token, now=ledger.clock()) is not None

    # the state column exactly as parsed, another column edited: the whole row's MAC still decides
    raw.run("UPDATE case_state SET view = ? WHERE case_id = ?", ('{"edited":true}', REGISTRY_CASE_ID))
    _refused(ledger, store, token, ticks)
    _put_state_row(raw, good)

    actors.revoke("investigator")
    assert ledger.registry_state() is not None  # the newer registry is parsed and kept
    _put_state_row(raw, good)  # restored to before the revocation: a MAC'd row, but not the current one
    _refused(ledger, store, token, ticks)


def test_the_token_benchmark_runs_at_a_small_registry() -> None:
    """ops/bench/bench_tokens (docs/benchmarks.md) keeps working; its figures are not checked here."""
    from ops.bench.bench_tokens import measure

    figures = measure("sqlite", 3, 5)
    assert set(figures) == {"registry_kib", "baseline", "parse_reused_only", "actor_first_only", "shipped", "row_only"}
    assert all(value > 0 for value in figures.values())
