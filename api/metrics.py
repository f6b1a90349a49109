"""The service's Prometheus metrics, kept by ``prometheus_client`` in a registry of their own.

Each :class:`Metrics` (one per app) has its own ``CollectorRegistry``, never the process-wide
default, so several apps in one process (the tests build many) never share or clash. ``render``
is the Prometheus text exposition format 0.0.4 (``CONTENT_TYPE``), without the ``*_created``
series.

* ``evidence_ledger_http_requests_total{route,method,status}`` (counter);
* ``evidence_ledger_append_seconds`` (histogram): from receiving an envelope to its durable commit;
* ``evidence_ledger_group_commit_batch_size`` (histogram): envelopes per group-commit transaction;
* ``evidence_ledger_reads_total{database,reason}`` (counter): with a read replica, the routed reads by
  the database that served them and why (docs/scaling-reads.md);
* gauges read at scrape time from ``Metrics.gauges`` (name -> function), e.g.
  ``evidence_ledger_log_size``, ``evidence_ledger_checkpoint_size`` and
  ``evidence_ledger_witnessed_size`` (production: the published checkpoint's size),
  ``evidence_ledger_tiles_size`` and ``evidence_ledger_tile_conflicts`` (the tiled log); a gauge whose function
  fails or returns None is left out of that scrape, never breaking it.

Labels are bounded: the route label is the route *template* (``/v1/cases/{case_id}``), never a
concrete path, and unmatched paths share one label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import prometheus_client
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
GAUGE_HELP = {
    "evidence_ledger_log_size": "Entries in the transparency log.",
    "evidence_ledger_checkpoint_size": "Tree size of the latest signed checkpoint.",
    "evidence_ledger_witnessed_size": "Tree size of the newest checkpoint cosigned as the profile asks"
    " (production: the published one).",
    "evidence_ledger_tiles_size": "Tree size of the checkpoint in the tiles directory (docs/tiles.md).",
    "evidence_ledger_tile_conflicts": "TILE_CONFLICTs seen since start: the tiles directory holds other bytes or a"
    " checkpoint the database does not extend (never rewritten).",
    "evidence_ledger_replica_log_size": "Entries the read replica has replayed (absent when it cannot be reached).",
    "evidence_ledger_replica_lag": "Entries the primary has that the read replica has not replayed yet.",
    "evidence_ledger_read_floor": "No routed read reflects fewer entries: the newest checkpoint signed, recorded"
    " or served.",
}


class Histogram:
    """A ``prometheus_client`` histogram whose observation count and sum can also be read directly."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.buckets = tuple(buckets)
        self.metric = prometheus_client.Histogram(name, documentation, buckets=self.buckets, registry=registry)

    def observe(self, value: float) -> None:
        self.metric.observe(value)

    def _sample(self, suffix: str) -> float:
        for family in self.metric.collect():
            for sample in family.samples:
                if sample.name == family.name + suffix:
                    return float(sample.value)
        return 0.0

    @property
    def count(self) -> int:
        return int(self._sample("_count"))

    @property
    def total(self) -> float:
        return self._sample("_sum")


class ScrapeGauges(Collector):
    """Gauges whose value is read when Prometheus scrapes (e.g. the log size from the database)."""

    def __init__(self, gauges: dict[str, Callable[[], float | None]]) -> None:
        self.gauges = gauges

    def describe(self) -> list[Metric]:
        return []  # nothing is read at registration; the names are known only once the ledger is open

    def collect(self) -> Iterator[Metric]:
        for name, read in sorted(self.gauges.items()):
            try:
                value = read()
            except Exception:  # a gauge must never break the scrape
                value = None
            if value is not None:
                yield GaugeMetricFamily(name, GAUGE_HELP.get(name, name.replace("_", " ")), value=value)


class WithoutCreated(Collector):
    """A registry's metrics without the ``*_created`` series ``prometheus_client`` adds to counters and
    histograms: in the text format they would be one more gauge per label set, which nothing here reads."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            created = family.name + "_created"
            if any(sample.name == created for sample in family.samples):
                copy = Metric(family.name, family.documentation, family.type, family.unit)
                copy.samples = [sample for sample in family.samples if sample.name != created]
                family = copy
            yield family


class Metrics:
    """Request counts by route/method/status, append latency and batch sizes, plus gauges read at scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "evidence_ledger_http_requests",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.append_latency = Histogram(
            "evidence_ledger_append_seconds",
            "Time from receiving an envelope to its durable commit.",
            LATENCY_BUCKETS,
            self.registry,
        )
        self.batch_size = Histogram(
            "evidence_ledger_group_commit_batch_size",
            "Envelopes per group-commit transaction.",
            BATCH_BUCKETS,
            self.registry,
        )
        self.reads = Counter(
            "evidence_ledger_reads",
            "Reads of the replica-routed endpoints by the database that served them (replica, primary, none)"
            " and why (current, behind, unreachable, failed, refused); only with a read replica configured.",
            ("database", "reason"),
            registry=self.registry,
        )
        self.gauges: dict[str, Callable[[], float | None]] = {}
        self.registry.register(ScrapeGauges(self.gauges))

    def count_request(self, route: str, method: str, status: int) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()

    def count_read(self, database: str, reason: str) -> None:
        self.reads.labels(database=database, reason=reason).inc()

    def read_count(self, database: str, reason: str) -> int:
        """How many routed reads ``database`` served for ``reason`` so far."""
        for family in self.reads.collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == {"database": database, "reason": reason}:
                    return int(sample.value)
        return 0

    def observe_append(self, seconds: float) -> None:
        self.append_latency.observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def render(self) -> str:
        """The text exposition of every metric of this registry (``CONTENT_TYPE``)."""
        return generate_latest(WithoutCreated(self.registry)).decode("utf-8")
