"""Reading a case from its projection: latency must stay flat as the case grows.

    python -m ops.bench.bench_case_read [--backend sqlite|postgres|both] [--reads N]

Builds one case and grows it to 10, 100 and 1,000 events (custody transfers on one footage item,
so the projection itself grows), timing `Ledger.case_view_json` — what the API serves — at each
size. Baseline in the same run: the same read on a 10-event case.
Goal (issue 2): p99 ≤ 10 ms at 1,000 events, flat in the number of events.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

from ops.bench.common import BenchLedger, bench_ledger, median, percentile, signed_chain

SIZES = (10, 100, 1000)


def _event(seq: int) -> tuple[str, dict[str, Any]]:
    if seq == 1:
        return "CaseOpened", {"case_number": "CPD-READ", "category": "violence", "summary": "read bench"}
    if seq == 2:
        return "FootageCaptured", {
            "footage_id": "f1",
            "source": "body_worn_camera",
            "device_id": "BWC-1",
            "recorded_from": "2026-02-05T16:58:00Z",
            "recorded_to": "2026-02-05T17:06:00Z",
            "sha256": "a" * 64,
            "size_bytes": 1,
            "media_type": "video/mp4",
            "depicts": ["violence_by_federal_officials"],
            "custodian": "c0",
            "stored": False,
        }
    return "CustodyTransferred", {
        "footage_id": "f1",
        "from_custodian": f"c{seq - 3}",
        "to_custodian": f"c{seq - 2}",
        "purpose": "review",
    }


def _grow(bench: BenchLedger, case_id: str, start: int, stop: int) -> None:
    _, prev = bench.ledger.case_head(case_id)
    raws = signed_chain(
        bench.investigator,
        case_id,
        (_event(seq) for seq in range(start, stop + 1)),
        first_seq=start,
        prev=prev,
    )
    for i in range(0, len(raws), 100):
        outcomes = bench.ledger.append(raws[i : i + 100])
        assert all(hasattr(o, "leaf_index") for o in outcomes), outcomes[0]


def run(backend: str, reads: int) -> list[tuple[int, float, float]]:
    rows = []
    with bench_ledger(backend) as bench:
        case_id = str(uuid.uuid4())
        done = 0
        for size in SIZES:
            _grow(bench, case_id, done + 1, size)
            done = size
            timings = []
            for _ in range(reads):
                started = time.perf_counter()
                raw = bench.ledger.case_view_json(case_id)
                timings.append((time.perf_counter() - started) * 1000)
            assert json.loads(raw)["version"] == size
            rows.append((size, median(timings), percentile(timings, 99)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="both", choices=["sqlite", "postgres", "both"])
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        rows = run(backend, args.reads)
        base_p99 = rows[0][2]
        for size, p50, p99 in rows:
            print(
                f"{backend:8s} case of {size:5d} events: p50 {p50:.3f} ms, p99 {p99:.3f} ms "
                f"(p99 / 10-event baseline = {p99 / base_p99:.2f}x; goal p99 <= 10 ms, flat)"
            )


if __name__ == "__main__":
    main()
