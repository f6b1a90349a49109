"""What a token-cache miss costs, by the size of the key registry.

    python -m ops.bench.bench_tokens [--backend sqlite|postgres] [--keys 3,351] [--checks 500]

For each registry size, a throwaway ledger gets that many investigator keys and a token for each
(``ops.sim.cases.prepare``, as the state-wide simulation sets them up). Then ``TokenStore.verify``
runs with the token cache off, so every check is a miss: it reads the token row and checks that the
actor still holds an active key, which needs the key registry. Measured in the same run:

* the ledger as shipped (``Ledger.registry_state``: the registry row read and checked on every
  call, its parse reused while the checked row is unchanged);
* the baseline: the checked row parsed on every call, and every key's status computed before the
  actor's keys are picked out, as the previous release did;
* each of the two changes alone: only the parse reused, only the actor's keys picked out first;
* the registry row's read and check alone (what every miss still pays).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from ledger import tokens as token_module
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.storage.read_models import case_row, load_state
from ledger.store import Ledger
from ledger.tokens import TokenStore
from ops.bench.common import database, median
from ops.sim import model
from ops.sim.cases import prepare


def parsed_every_time(ledger: Ledger) -> Any:
    """The registry state as before the parse was reused: the same checked row, parsed anew."""
    with ledger.db.read() as tx:
        fields = case_row(tx, ledger.mac, REGISTRY_CASE_ID)
    return None if fields is None else load_state(REGISTRY_CASE_ID, fields[6])


def every_status_first(registry: Any, actor: str, role: str, authority: str | None, at: str) -> bool:
    """The previous release's key check: the status of every key, then the actor's."""
    if registry is None:
        return False
    return any(k.actor == actor and k.authority == authority for k in registry.active_keys(at, role))


@contextmanager
def previous_key_check() -> Iterator[None]:
    current = token_module.has_active_key
    token_module.has_active_key = every_status_first
    try:
        yield
    finally:
        token_module.has_active_key = current


def row_checked_only(ledger: Ledger) -> None:
    with ledger.db.read() as tx:
        case_row(tx, ledger.mac, REGISTRY_CASE_ID)


def per_call_ms(call: Callable[[], Any], count: int, rounds: int = 5) -> float:
    """The median over ``rounds`` of the mean time per call of ``count`` calls, in ms."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            call()
        times.append((time.perf_counter() - started) / count * 1000)
    return median(times)


def measure(backend: str, keys: int, checks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="el-bench-") as tmp, database(backend) as url:
        settings, signers = prepare(Path(tmp) / "data", url, model.departments(keys))
        with Ledger(settings) as ledger:
            tokens = [s.token for s in signers]

            def checker(registry: Callable[[], Any]) -> Callable[[], None]:
                store = TokenStore(ledger.db, ledger.mac, authorities=tuple(settings.authorities),
                                   registry=registry, max_lifetime=timedelta(days=2), cache_seconds=0)
                turn = iter(range(1 << 62))

                def check() -> None:
                    token = tokens[next(turn) % len(tokens)]
                    if store.verify(token, now=ledger.clock()) is None:
                        raise AssertionError("a valid token was refused")
                return check

            with ledger.db.read() as tx:
                row = case_row(tx, ledger.mac, REGISTRY_CASE_ID)
            assert row is not None
            figures = {"registry_kib": len(row[6].encode("utf-8")) / 1024}
            with previous_key_check():
                figures["baseline"] = per_call_ms(checker(lambda: parsed_every_time(ledger)), checks)
                figures["parse_reused_only"] = per_call_ms(checker(ledger.registry_state), checks)
            figures["actor_first_only"] = per_call_ms(checker(lambda: parsed_every_time(ledger)), checks)
            figures["shipped"] = per_call_ms(checker(ledger.registry_state), checks)
            figures["row_only"] = per_call_ms(lambda: row_checked_only(ledger), checks)
            return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--keys", default="3,351", help="registry sizes (keys and tokens), comma-separated")
    parser.add_argument("--checks", type=int, default=500, help="token checks per measurement")
    args = parser.parse_args(argv)
    for keys in (int(k) for k in args.keys.split(",")):
        f = measure(args.backend, keys, args.checks)
        print(
            f"{args.backend} {keys} keys (registry state {f['registry_kib']:.0f} KiB), one token check, cache missed:"
            f" {f['shipped']:.2f} ms; baseline (previous release) {f['baseline']:.2f} ms"
            f" = {f['baseline'] / f['shipped']:.1f}x; only the parse reused {f['parse_reused_only']:.2f} ms;"
            f" only the actor's keys first {f['actor_first_only']:.2f} ms;"
            f" the registry row's read and check alone {f['row_only']:.2f} ms"
        )


if __name__ == "__main__":
    main()
