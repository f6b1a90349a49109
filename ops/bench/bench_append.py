"""Batched signed appends through the ledger vs a plain eventsourcing batch save of the same events.

    python -m ops.bench.bench_append [--backend sqlite|postgres|both] [--events N] [--batch B]

The baseline saves the same events (statement fields and body) as plain eventsourcing aggregates
with `Application.save()` — the library's default mapper and JSON transcoder, one transaction per
batch — so the ratio shows what the ledger adds: strict parsing, signature verification, rules,
leaves, tree nodes and read models.
Goal (issue 2): ledger ≥ 60 % of the baseline.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ledger.envelope.dsse import parse_envelope
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
        baseline_rate = _baseline_rate(ledger, bench.settings.data_dir, envelopes, batch)
    return {"ledger": ledger_rate, "baseline": baseline_rate, "ratio": ledger_rate / baseline_rate}


class Case(Aggregate):
    """A plain eventsourcing aggregate carrying the same statement fields as the envelope."""

    @event("Opened")
    def __init__(
        self, ledger: str, event_id: str, occurred_at: str, signer: str, body: dict[str, Any]
    ) -> None:
        self.body = body


class BaselineApplication(Application):
    name = "baseline"


def _baseline_rate(ledger: Any, data_dir: Path, envelopes: list[bytes], batch: int) -> float:
    """The same events saved with `Application.save()` (default mapper, JSON transcoder), `batch` per save."""
    env = application_env(ledger.target, create_tables=True, pool_size=4, lock_timeout=5)
    env["BASELINE_SQLITE_DBNAME"] = str(data_dir / "baseline.sqlite3")
    app = BaselineApplication(env=env)
    statements = [parse_envelope(raw).statement for raw in envelopes]
    started = time.perf_counter()
    for i in range(0, len(statements), batch):
        cases = [
            Case(
                ledger=s.ledger, event_id=s.event_id, occurred_at=s.occurred_at, signer=s.signer, body=s.body
            )
            for s in statements[i : i + batch]
        ]
        app.save(*cases)
    rate = len(statements) / (time.perf_counter() - started)
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
            f"plain eventsourcing {r['baseline']:,.0f} ev/s, ratio {r['ratio']:.0%} (goal >= 60%)"
        )


if __name__ == "__main__":
    main()
