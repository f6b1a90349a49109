"""A few Prometheus metrics, kept in memory and rendered as text exposition format 0.0.4.

Labels are bounded: the route label is the route *template* (``/v1/cases/{case_id}``), never a
concrete path, and unmatched paths share one label.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Sequence

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str) -> list[str]:
        lines = []
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            cumulative += count
            lines.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {self.total:.6f}")
        lines.append(f"{name}_count {self.count}")
        return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts by route/method/status, append latency and batch sizes, plus gauges read at scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.append_latency = Histogram(LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.gauges: dict[str, Callable[[], float | None]] = {}

    def count_request(self, route: str, method: str, status: int) -> None:
        with self._lock:
            self.requests[(route, method, status)] += 1

    def observe_append(self, seconds: float) -> None:
        with self._lock:
            self.append_latency.observe(seconds)

    def observe_batch(self, size: int) -> None:
        with self._lock:
            self.batch_size.observe(size)

    def render(self) -> str:
        gauges = {}
        for name, read in self.gauges.items():
            try:
                gauges[name] = read()
            except Exception:  # a gauge must never break the scrape
                gauges[name] = None
        with self._lock:
            lines = [
                "# HELP evidence_ledger_http_requests_total HTTP requests by route template, method and status.",
                "# TYPE evidence_ledger_http_requests_total counter",
            ]
            for (route, method, status), count in sorted(self.requests.items()):
                lines.append(
                    f'evidence_ledger_http_requests_total{{route="{_label(route)}",method="{method}",'
                    f'status="{status}"}} {count}'
                )
            lines += [
                "# HELP evidence_ledger_append_seconds Time from receiving an envelope to its durable commit.",
                "# TYPE evidence_ledger_append_seconds histogram",
                *self.append_latency.render("evidence_ledger_append_seconds"),
                "# HELP evidence_ledger_group_commit_batch_size Envelopes per group-commit transaction.",
                "# TYPE evidence_ledger_group_commit_batch_size histogram",
                *self.batch_size.render("evidence_ledger_group_commit_batch_size"),
            ]
        for name, value in sorted(gauges.items()):
            if value is not None:
                lines += [f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
