"""What one append costs on a case of 3,000 events against one on a new case (P8).

    python -m ops.bench.bench_case_growth [--backend sqlite|postgres|both] [--size 3000] [--appends 200]

Grows one case to ``--size`` events (custody transfers of one footage item: the kind of history that
made the state and view grow before its links became rows of their own), then times ``--appends`` single-envelope appends (one `Ledger.append` call, one
transaction each) to it, and in the same run as many single appends of the same kind to cases of
three events. Both series alternate, so the machine's drift touches both alike.
Goal (issue 12, P8): the large case's median ≤ 1.25 × the small case's.
"""

from __future__ import annotations

import argparse
import time
import uuid

from ops.bench.bench_case_read import _event as case_event
from ops.bench.common import BenchLedger, bench_ledger, median, percentile, signed_chain


def _grow(bench: BenchLedger, case_id: str, size: int) -> None:
    raws = signed_chain(bench.investigator, case_id, (case_event(seq) for seq in range(1, size + 1)))
    for i in range(0, len(raws), 100):
        outcomes = bench.ledger.append(raws[i : i + 100])
        assert all(hasattr(o, "leaf_index") for o in outcomes), outcomes[0]


def _one_more(bench: BenchLedger, case_id: str) -> float:
    """Seconds for appending the case's next custody transfer alone."""
    version, prev = bench.ledger.case_head(case_id)
    (raw,) = signed_chain(bench.investigator, case_id, [case_event(version + 1)], first_seq=version + 1, prev=prev)
    started = time.perf_counter()
    (outcome,) = bench.ledger.append([raw])
    elapsed = time.perf_counter() - started
    assert hasattr(outcome, "leaf_index"), outcome
    return elapsed


def run(backend: str, size: int, appends: int) -> tuple[list[float], list[float]]:
    with bench_ledger(backend) as bench:
        large = str(uuid.uuid4())
        _grow(bench, large, size)
        small_cases = [str(uuid.uuid4()) for _ in range(appends)]
        for case_id in small_cases:
            _grow(bench, case_id, 2)
        large_ms, small_ms = [], []
        for case_id in small_cases:
            large_ms.append(_one_more(bench, large) * 1000)
            small_ms.append(_one_more(bench, case_id) * 1000)
    return large_ms, small_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="both", choices=["sqlite", "postgres", "both"])
    parser.add_argument("--size", type=int, default=3000)
    parser.add_argument("--appends", type=int, default=200)
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        large, small = run(backend, args.size, args.appends)
        print(
            f"{backend:8s} append to a case of {args.size:,} events: median {median(large):.2f} ms, "
            f"p99 {percentile(large, 99):.2f} ms; to a case of 3 events: median {median(small):.2f} ms, "
            f"p99 {percentile(small, 99):.2f} ms; ratio {median(large) / median(small):.2f}x (goal <= 1.25x)"
        )


if __name__ == "__main__":
    main()
