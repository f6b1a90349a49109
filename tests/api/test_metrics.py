"""GET /metrics: prometheus_client, one registry per app, the names and labels docs/api.md lists."""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import Metrics
from ledger.store import Ledger
from tests.support.api import running_api
from tests.support.cases import case_opened, new_case_id


def families(text: str) -> dict[str, prometheus_client.Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_metrics_are_prometheus_client_text_that_parses(ledger: Ledger) -> None:
    with running_api(ledger) as api:
        case_id = new_case_id()
        api.ok("investigator", case_id, "CaseOpened", case_opened())
        assert api.client.get(f"/v1/cases/{case_id}", headers=api.auth("investigator")).status_code == 200
        answer = api.client.get("/metrics")
        metrics = api.app.state.runtime.metrics
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert isinstance(metrics.registry, CollectorRegistry) and metrics.registry is not prometheus_client.REGISTRY
    assert isinstance(metrics.requests, prometheus_client.Counter)

    found = families(answer.text)
    assert {
        "evidence_ledger_http_requests", "evidence_ledger_append_seconds",
        "evidence_ledger_group_commit_batch_size", "evidence_ledger_log_size", "evidence_ledger_checkpoint_size",
    } <= found.keys()
    assert not any(name.endswith("_created") for name in found)
    requests = found["evidence_ledger_http_requests"]
    assert requests.type == "counter"
    routes = {(s.labels["route"], s.labels["method"], s.labels["status"]): s.value for s in requests.samples}
    assert routes[("/v1/cases/{case_id}", "GET", "200")] == 1
    assert all(set(s.labels) == {"route", "method", "status"} for s in requests.samples)
    append = found["evidence_ledger_append_seconds"]
    assert append.type == "histogram"
    assert {s.name: s.value for s in append.samples if not s.labels}["evidence_ledger_append_seconds_count"] >= 1
    assert found["evidence_ledger_group_commit_batch_size"].type == "histogram"
    (size,) = found["evidence_ledger_log_size"].samples
    assert found["evidence_ledger_log_size"].type == "gauge" and size.value == ledger.log_size()


def test_each_app_has_its_own_registry_and_a_failing_gauge_is_left_out() -> None:
    one, two = Metrics(), Metrics()
    one.count_request("/v1/keys", "GET", 200)
    one.gauges["evidence_ledger_log_size"] = lambda: 7
    one.gauges["evidence_ledger_checkpoint_size"] = lambda: 1 // 0
    two.gauges["evidence_ledger_checkpoint_size"] = lambda: None
    first, second = families(one.render()), families(two.render())
    assert first["evidence_ledger_log_size"].samples[0].value == 7
    assert "evidence_ledger_checkpoint_size" not in first and "evidence_ledger_checkpoint_size" not in second
    assert len(first["evidence_ledger_http_requests"].samples) == 1
    assert second["evidence_ledger_http_requests"].samples == []
