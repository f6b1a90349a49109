"""Full-audit throughput beside the bare Ed25519 verify rate on all cores, measured in the same run.

    python -m ops.bench.bench_audit [--backend sqlite|postgres|both] [--events N] [--profile]

The ledger is filled with N pre-signed CaseOpened envelopes (one case each, the worst case for the
read models) through the real append path in batches of 1,000. Then, on the same machine and run:

  * bare verify rate: ``engine.verify_signatures`` over the already parsed envelopes, all cores;
  * full audit: read every table (``audit_source.read_database``) and ``audit.run_audit`` with
    ``workers = os.cpu_count()`` — parse, signatures, chains and rules, leaves, tree, nodes,
    checkpoints, projection rebuild and comparison. Goal: >= 80 % of the bare rate.

``--profile`` adds a cProfile of one audit (top functions by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time

from ledger.audit.run import AuditOptions, paused_gc, run_audit
from ledger.audit.source import read_database
from ledger.bootstrap import log_verifier_key
from ledger.envelope.dsse import REGISTRY_CASE_ID, parse_envelope
from ledger.log import note
from ledger.store import Ledger
from ledger.verify import verify_signatures
from ops.bench.common import bench_ledger, case_opened_envelopes

BATCH = 1000


def fill(ledger: Ledger, envelopes: list[bytes]) -> float:
    start = time.perf_counter()
    for i in range(0, len(envelopes), BATCH):
        ledger.append(envelopes[i : i + BATCH])
    ledger.checkpoint()
    return time.perf_counter() - start


def bare_rate(ledger: Ledger, envelopes: list[bytes], workers: int) -> float:
    """Ed25519 verifications per second through the engine's parallel pre-pass (the key registry's
    envelopes go first so that every signer's key is known; parsing is not timed)."""
    registry = ledger.case_envelopes(REGISTRY_CASE_ID)
    parsed = [parse_envelope(raw) for raw in [*registry, *envelopes]]
    start = time.perf_counter()
    verdicts = verify_signatures(parsed, workers=workers)
    elapsed = time.perf_counter() - start
    assert all(verdicts.values()) and len(verdicts) == len(parsed)
    return len(parsed) / elapsed


def audit_options(ledger: Ledger, workers: int) -> AuditOptions:
    return AuditOptions(
        log_key=note.parse_verifier_key(log_verifier_key(ledger.config, ledger.log_key)),
        independent=True,
        origin=ledger.origin,
        trust_root=ledger.config.admin_key_id,
        config=ledger.domain_config,
        workers=workers,
    )


def full_audit(ledger: Ledger, workers: int, profile: bool) -> tuple[float, dict[str, float]]:
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    with paused_gc():
        data = read_database(ledger.db)
        read = time.perf_counter() - start
        report = run_audit(data, audit_options(ledger, workers))
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - start
    assert report.findings == [], [str(f) for f in report.findings[:5]]
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(22)
        print(out.getvalue())
    return elapsed, {"read": read, **report.timings}


def run(backend: str, events: int, profile: bool) -> None:
    workers = os.cpu_count() or 1
    with bench_ledger(backend) as bench:
        envelopes = case_opened_envelopes(bench.investigator, events)
        filled = fill(bench.ledger, envelopes)
        total = bench.ledger.log_size()
        bare = bare_rate(bench.ledger, envelopes, workers)
        bare_one = bare_rate(bench.ledger, envelopes[:5000], 1)
        elapsed, phases = full_audit(bench.ledger, workers, profile)
    rate = total / elapsed
    print(f"{backend}: {total:,} entries (filled in {filled:.1f} s), {workers} cores")
    print(f"  bare Ed25519 verify: {bare:,.0f}/s on all cores ({bare_one:,.0f}/s on one)")
    print(
        f"  full audit: {elapsed:.2f} s = {rate:,.0f} events/s = {100 * rate / bare:.0f} % of the bare rate"
    )
    print("  phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        run(backend, args.events, args.profile)


if __name__ == "__main__":
    main()
