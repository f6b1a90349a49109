"""Reading a case from its projection: latency must stay flat as the case grows.

    python -m ops.bench.bench_case_read [--backend sqlite|postgres|both] [--reads N]

Builds one case and grows it to 10, 100 and 1,000 events (custody transfers on one footage item,
whose links are rows of their own: the view holds their number), timing `Ledger.case_view_json` — what the API serves — at each
size, and the read of the chain's last page of (up to) 100 links, `Ledger.custody` — what
`GET /v1/cases/{id}/footage/{footage_id}/custody` serves. Baseline in the same run: the same reads
on a 10-event case (for the chain's page, on the 100-event case: the first with a page of ~100 links).
Goal (issue 2): p99 ≤ 10 ms at 1,000 events, flat in the number of events.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from functools import partial
from typing import Any

from ops.bench.common import BenchLedger, bench_ledger, median, percentile, signed_chain

SIZES = (10, 100, 1000)
PAGE = 100


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


def _timed(reads: int, read: Any) -> tuple[list[float], Any]:
    timings, result = [], None
    for _ in range(reads):
        started = time.perf_counter()
        result = read()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, result


def run(backend: str, reads: int) -> list[tuple[int, float, float, float, float]]:
    rows = []
    with bench_ledger(backend) as bench:
        case_id = str(uuid.uuid4())
        done = 0
        for size in SIZES:
            _grow(bench, case_id, done + 1, size)
            done = size
            timings, raw = _timed(reads, lambda: bench.ledger.case_view_json(case_id))
            assert json.loads(raw)["version"] == size
            links = size - 1  # the capture and every transfer
            after = max(links - PAGE, 0)
            pages, page = _timed(reads, partial(bench.ledger.custody, case_id, "f1", after=after, limit=PAGE))
            assert [link["step"] for link in page] == list(range(after + 1, links + 1))
            rows.append((size, median(timings), percentile(timings, 99), median(pages), percentile(pages, 99)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="both", choices=["sqlite", "postgres", "both"])
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        rows = run(backend, args.reads)
        base_p99, base_page = rows[0][2], rows[1][4]  # pages: the 100-event case's is the first (nearly) full one
        for size, p50, p99, page_p50, page_p99 in rows:
            print(
                f"{backend:8s} case of {size:5d} events: p50 {p50:.3f} ms, p99 {p99:.3f} ms "
                f"(p99 / 10-event baseline = {p99 / base_p99:.2f}x; goal p99 <= 10 ms, flat)"
            )
            print(
                f"{backend:8s}   its chain's last page (<= {PAGE} links): p50 {page_p50:.3f} ms, p99 {page_p99:.3f} ms "
                f"(p99 / 100-event case = {page_p99 / base_page:.2f}x; goal p99 <= 10 ms, flat)"
            )


if __name__ == "__main__":
    main()
