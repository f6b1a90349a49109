"""Full-audit throughput beside bare Ed25519 verification on all cores, measured in the same run.

    python -m ops.bench.bench_audit [--backend sqlite|postgres|both] [--events N] [--workers W]
                                    [--serial] [--profile]

The ledger is filled with N pre-signed CaseOpened envelopes (one case each, the worst case for the
read models) through the real append path in batches of 1,000. Then, on the same machine and run:

  * baseline: bare Ed25519 verification of the same signatures (every stored envelope) on W
    threads, W = all cores by default. ``cryptography`` releases the GIL while it verifies, so the
    threads use every core; the key objects and signed messages are made beforehand, so nothing
    but ``verify`` is timed. Measured before and after the audit (their mean is the baseline) and
    on one thread, to show that the threads scale (the harness is not what limits the figure);
  * full audit: read every table (``audit_source.read_database``) and ``audit.run_audit`` with
    ``workers = W`` — parse, signatures, chains and rules, leaves, tree, nodes, checkpoints,
    projection rebuild and comparison. Goal (issue 12, P3): >= 80 % of the baseline.

``--serial`` also runs the audit with one worker and checks that both reports have the same
findings. ``--profile`` adds a cProfile of the main process during one audit.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from dataclasses import replace
from typing import Any

from ledger.audit.run import AuditOptions, AuditReport, paused_gc, run_audit
from ledger.audit.source import AuditInput, read_database
from ledger.bootstrap import log_verifier_key
from ledger.envelope.dsse import REGISTRY_CASE_ID, parse_envelope
from ledger.log import note
from ledger.store import Ledger
from ledger.verify import public_keys_in
from ops.bench.common import bare_ed25519_rate, bench_ledger, case_opened_envelopes, signature_items

BATCH = 1000


def fill(ledger: Ledger, envelopes: list[bytes]) -> float:
    start = time.perf_counter()
    for i in range(0, len(envelopes), BATCH):
        ledger.append(envelopes[i : i + BATCH])
    ledger.checkpoint()
    return time.perf_counter() - start


def signatures(ledger: Ledger, envelopes: list[bytes]) -> list[tuple[Any, bytes, bytes]]:
    registry = ledger.case_envelopes(REGISTRY_CASE_ID)
    keys = public_keys_in([parse_envelope(raw) for raw in registry])
    return signature_items([*registry, *envelopes], keys)


def audit_options(ledger: Ledger, workers: int) -> AuditOptions:
    return AuditOptions(
        log_key=note.parse_verifier_key(log_verifier_key(ledger.config, ledger.log_key)),
        independent=True,
        origin=ledger.origin,
        trust_root=ledger.config.admin_key_id,
        config=ledger.domain_config,
        workers=workers,
    )


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process and by its (finished) worker processes."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def full_audit(data: AuditInput, options: AuditOptions, profile: bool) -> tuple[float, AuditReport, str]:
    profiler = cProfile.Profile() if profile else None
    own, children = cpu_seconds()
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = run_audit(data, options)
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - start
    own_after, children_after = cpu_seconds()
    cpu = f"CPU {own_after - own:.1f} s in this process + {children_after - children:.1f} s in workers"
    assert report.findings == [], [str(f) for f in report.findings[:5]]
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(22)
        print(out.getvalue())
    return elapsed, report, cpu


def run(backend: str, events: int, workers: int, serial: bool, profile: bool) -> None:
    with bench_ledger(backend) as bench, paused_gc():
        envelopes = case_opened_envelopes(bench.investigator, events)
        filled = fill(bench.ledger, envelopes)
        total = bench.ledger.log_size()
        items = signatures(bench.ledger, envelopes)
        options = audit_options(bench.ledger, workers)
        started = time.perf_counter()
        data = read_database(bench.ledger.db)
        read = time.perf_counter() - started
        # As `evidence-ledger audit` does: the ledger (and a PostgreSQL pool's threads) is closed
        # before the audit forks its workers.
        bench.ledger.close()
        bare_one = bare_ed25519_rate(items[:5000], 1)
        before = bare_ed25519_rate(items, workers)
        elapsed, report, cpu = full_audit(data, options, profile)
        after = bare_ed25519_rate(items, workers)
        if serial:
            serial_elapsed, serial_report, serial_cpu = full_audit(data, replace(options, workers=1), False)
            assert serial_report.to_json()["findings"] == report.to_json()["findings"]
    elapsed += read
    bare = (before + after) / 2
    rate = total / elapsed
    print(f"{backend}: {total:,} entries (filled in {filled:.1f} s), {workers} workers on {os.cpu_count()} cores")
    print(
        f"  baseline, bare Ed25519 verify of the same {len(items):,} signatures on {workers} threads: "
        f"{bare:,.0f}/s (before the audit {before:,.0f}/s, after {after:,.0f}/s; one thread {bare_one:,.0f}/s)"
    )
    print(
        f"  full audit (read + run_audit): {elapsed:.2f} s = {rate:,.0f} events/s = {rate / bare:.0%} of the "
        "baseline  [goal >= 80%]"
    )
    print("  phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in {"read": read, **report.timings}.items()))
    print(f"  run_audit: {cpu}")
    if serial:
        serial_elapsed += read
        serial_rate = total / serial_elapsed
        print(
            f"  one worker: {serial_elapsed:.2f} s = {serial_rate:,.0f} events/s = {serial_rate / bare:.0%} of "
            f"the baseline (same findings); {workers} workers are {serial_elapsed / elapsed:.2f}x faster"
        )
        print(
            "  phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in {"read": read, **serial_report.timings}.items())
        )
        print(f"  run_audit: {serial_cpu}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--serial", action="store_true", help="also audit with one worker and compare")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        run(backend, args.events, args.workers, args.serial, args.profile)


if __name__ == "__main__":
    main()
