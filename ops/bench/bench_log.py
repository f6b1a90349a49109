"""Transparency-log costs at scale: proofs at 1,000,000 entries and append rate at 10k vs 1M.

    python -m ops.bench.bench_log [--backend sqlite|postgres|both] [--size N] [--proofs P]

The log is filled to N entries with synthetic leaves (same leaf format, written with the same
node store the append path uses) so that reaching 1M entries takes seconds, not hours. Then:
  * inclusion and consistency proof generation from storage, median and p99 over P random requests
    (goal: ≤ 1 ms median each at 1M);
  * the real signed append path, 4,000 events in batches of 100, measured at 10k entries and again
    at N, each after the fill's pages left the SQLite WAL (goal: rate at 1M ≥ 90 % of the rate at
    10k: the cost is flat).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
import uuid

from ledger.envelope.canonical import format_time
from ledger.log import merkle, tlog
from ledger.log.leaf import leaf_bytes
from ledger.storage.read_models import LogHead, log_head, write_position
from ledger.storage.sql import Tx
from ops.bench.common import bench_ledger, case_opened_envelopes, median, percentile

CHUNK = 20_000


def prefill(ledger: object, target: int) -> None:
    """Extend the log with synthetic entries up to ``target`` leaves, and the MAC'd log head with it
    (the service refuses to write on a log whose head does not match it: STATE_TAMPERED)."""
    db, mac = ledger.db, ledger.mac  # type: ignore[attr-defined]
    with db.write() as tx:
        size, _ = tlog.log_size(tx)
        tree = tlog.load_range(tx, size)
        head, _ = log_head(tx, mac)
    assert head is not None, "prefill extends an initialised ledger"
    stamp = format_time(ledger.clock())  # type: ignore[attr-defined]
    while size < target:
        entries, nodes = [], []
        for index in range(size, min(target, size + CHUNK)):
            digest = hashlib.sha256(index.to_bytes(8, "big")).hexdigest()
            leaf = leaf_bytes(digest, index, stamp)
            nodes.extend(tree.append(merkle.leaf_hash(leaf)))
            entries.append((index, str(uuid.uuid4()), str(uuid.uuid4()), 1, "Synthetic", digest, leaf, stamp))
        head = LogHead(tree.size, tree.root(), stamp, head.cases, head.public_releases)
        with db.write() as tx:
            _insert(tx, entries, nodes)
            write_position(tx, mac, tree.size - 1, head)
        size = tree.size
    # The bulk fill's pages leave the SQLite WAL before the measurement (no-op on PostgreSQL): the
    # rate at N is the steady-state append rate, not the one-off flush of a synthetic fill.
    db.compact()


def _insert(tx: Tx, entries: list[tuple[object, ...]], nodes: list[tuple[int, int, bytes]]) -> None:
    tx.executemany(
        "INSERT INTO log_entries (leaf_index, event_id, case_id, seq, event_type, envelope_sha256, leaf,"
        " integrated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        entries,
    )
    tlog.store_nodes(tx, nodes)


def append_rate(bench: object, events: int = 4000, batch: int = 100) -> float:
    envelopes = case_opened_envelopes(bench.investigator, events)  # type: ignore[attr-defined]
    started = time.perf_counter()
    for i in range(0, events, batch):
        bench.ledger.append(envelopes[i : i + batch])  # type: ignore[attr-defined]
    return events / (time.perf_counter() - started)


def proof_timings(ledger: object, proofs: int) -> tuple[list[float], list[float]]:
    size = ledger.log_size()  # type: ignore[attr-defined]
    rng = random.Random(7)  # noqa: S311 - reproducible benchmark sample, not security
    inclusion, consistency = [], []
    for _ in range(proofs):
        index = rng.randrange(size)
        started = time.perf_counter()
        ledger.inclusion_proof(index, size)  # type: ignore[attr-defined]
        inclusion.append((time.perf_counter() - started) * 1000)
        first = rng.randrange(1, size)
        started = time.perf_counter()
        ledger.consistency_proof(first, size)  # type: ignore[attr-defined]
        consistency.append((time.perf_counter() - started) * 1000)
    return inclusion, consistency


def run(backend: str, size: int, proofs: int) -> None:
    with bench_ledger(backend) as bench:
        prefill(bench.ledger, 10_000)
        small = append_rate(bench)
        started = time.perf_counter()
        prefill(bench.ledger, size)
        fill = time.perf_counter() - started
        inclusion, consistency = proof_timings(bench.ledger, proofs)
        large = append_rate(bench)
        at = bench.ledger.log_size()
        print(f"{backend:8s} filled to {at:,} entries in {fill:.0f} s")
        print(
            f"{backend:8s} inclusion proof at {at:,}: median {median(inclusion):.3f} ms, "
            f"p99 {percentile(inclusion, 99):.3f} ms (goal median <= 1 ms)"
        )
        print(
            f"{backend:8s} consistency proof at {at:,}: median {median(consistency):.3f} ms, "
            f"p99 {percentile(consistency, 99):.3f} ms (goal median <= 1 ms)"
        )
        print(
            f"{backend:8s} signed appends: {small:,.0f} ev/s at 10k entries, {large:,.0f} ev/s at {at:,} "
            f"(ratio {large / small:.0%}; goal >= 90%)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="both", choices=["sqlite", "postgres", "both"])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=1000)
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        run(backend, args.size, args.proofs)


if __name__ == "__main__":
    main()
