"""Batched signed appends through the ledger vs a plain eventsourcing batch save of the same events.

    python -m ops.bench.bench_append [--backend sqlite|postgres|both] [--events N] [--batch B]

The baseline saves the same events (statement fields and body) as plain eventsourcing aggregates
with `Application.save()` — the library's default mapper and JSON transcoder, one transaction per
batch — after checking each envelope's Ed25519 signature once (the least any ledger of signed
events must do), so the ratio shows what the ledger adds beyond that: strict parsing, rules, leaves,
tree nodes, read models and their MACs. The rate of the save alone (no signature check) is printed
too. Goal (issue 12, P2): ledger ≥ 60 % of the baseline.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ledger.envelope.dsse import parse_envelope, verify_envelope
from ledger.storage.app import application_env
from ops.bench.common import bench_ledger, case_opened_envelopes


def run(backend: str, events: int, batch: int) -> dict[str, float]:
    with bench_ledger(backend) as bench:
        envelopes = case_opened_envelopes(bench.investigator, events)
        ledger = bench.ledger
        started = time.perf_counter()
        for i in range(0, events, batch):
            outcomes = ledger.append(envelopes[i : i + batch])
            assert all(hasattr(o, "leaf_index") for o in outcomes), outcomes[:1]
        ledger_rate = events / (time.perf_counter() - started)
        public = bench.investigator.public_key()
        save_only = _baseline_rate(ledger, bench.settings.data_dir, envelopes, batch, None, "save_only")
        baseline_rate = _baseline_rate(ledger, bench.settings.data_dir, envelopes, batch, public, "verified")
    return {
        "ledger": ledger_rate, "baseline": baseline_rate, "save_only": save_only, "ratio": ledger_rate / baseline_rate
    }


class Case(Aggregate):
    """A plain eventsourcing aggregate carrying the same statement fields as the envelope."""

    @event("Opened")
    def __init__(
        self, ledger: str, event_id: str, occurred_at: str, signer: str, body: dict[str, Any]
    ) -> None:
        self.body = body


class BaselineApplication(Application):
    name = "baseline"


def _baseline_rate(
    ledger: Any, data_dir: Path, envelopes: list[bytes], batch: int, public: Ed25519PublicKey | None, name: str
) -> float:
    """The same events saved with `Application.save()` (default mapper, JSON transcoder), `batch` per save;
    with ``public``, each envelope's signature checked first (one Ed25519 verify per event)."""
    env = application_env(ledger.target, create_tables=True, pool_size=4, lock_timeout=5)
    env["BASELINE_SQLITE_DBNAME"] = str(data_dir / f"baseline-{name}.sqlite3")
    app = BaselineApplication(env=env)
    parsed = [parse_envelope(raw) for raw in envelopes]
    started = time.perf_counter()
    for i in range(0, len(parsed), batch):
        chunk = parsed[i : i + batch]
        if public is not None:
            for envelope in chunk:
                verify_envelope(envelope, public)
        cases = [
            Case(
                ledger=s.ledger, event_id=s.event_id, occurred_at=s.occurred_at, signer=s.signer, body=s.body
            )
            for s in (envelope.statement for envelope in chunk)
        ]
        app.save(*cases)
    rate = len(parsed) / (time.perf_counter() - started)
    app.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="both", choices=["sqlite", "postgres", "both"])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        r = run(backend, args.events, args.batch)
        print(
            f"{backend:8s} events={args.events} batch={args.batch}: ledger {r['ledger']:,.0f} ev/s, "
            f"plain eventsourcing + one Ed25519 verify per event {r['baseline']:,.0f} ev/s "
            f"(save alone {r['save_only']:,.0f} ev/s), ratio {r['ratio']:.0%} (goal >= 60%)"
        )


if __name__ == "__main__":
    main()
