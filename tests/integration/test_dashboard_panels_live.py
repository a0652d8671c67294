"""Every panel of every Grafana dashboard returns data from the live Prometheus.

No Grafana runs here, so each panel's queries (template variables substituted as Grafana would, see
``twinlayer.dashboards``) go to the stack's Prometheus as instant queries while the stack does real work: events
(some malformed, some later than the watermark) stream through the speed layer, the serving API answers queries,
Airflow runs the stack-health, metric-export and watchdog DAGs, and the batch layer has published hours (the batch-layer
tests' module fixture, run here only when no batch metrics exist yet).
"""

import threading
import time

import pytest
import requests

from tests.integration.test_batch_layer import lambda_run, published  # noqa: F401 — fixtures, used on demand
from twinlayer.localstack.airflow_api import AirflowClient
from twinlayer.localstack.dashboards import load_dashboards, panel_queries
from twinlayer.localstack.generator import Workload, produce
from twinlayer.model.events import campaign_ids

pytestmark = pytest.mark.integration

BATCH_SERIES = (
    "twinlayer_batch_drift_ratio",
    "twinlayer_batch_last_success_timestamp_seconds",
    "twinlayer_batch_gate_success",
    "twinlayer_batch_boundary_timestamp_seconds",
)


def prom(settings, expr):
    body = requests.get(f"{settings.url('prometheus_port')}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


@pytest.fixture(scope="module")
def busy_stack(stack, settings, request):
    if not all(prom(settings, name) for name in BATCH_SERIES):
        request.getfixturevalue("published")
    stop = threading.Event()

    def query_serving():
        keys = campaign_ids()
        i = 0
        while not stop.is_set():
            requests.get(
                f"{settings.url('serving_port')}/views/campaign_views_10s",
                timeout=10,
                params={"key": keys[i % len(keys)], "from": "10m"},
            )
            i += 1
            stop.wait(0.2)

    reader = threading.Thread(target=query_serving, daemon=True)
    reader.start()
    try:
        produce(
            settings.kafka_bootstrap,
            settings.events_topic,
            Workload(
                rate=2000,
                count=90_000,
                malformed_fraction=0.03,
                late_fraction=0.03,
                late_by_ms=120_000,
                duplicate_fraction=0.02,
                seed=77,
            ),
        )
        client = AirflowClient.for_stack(settings)
        now_ms = int(time.time() * 1000)
        for dag_id in ("twinlayer_stack_health", "twinlayer_metric_export", "twinlayer_speed_watchdog"):
            run = client.run_interval(dag_id, now_ms - 60_000, now_ms, f"test_dashboards_{now_ms}")
            assert run["state"] == "success", (dag_id, run["tasks"])
        time.sleep(20)  # two more scrapes and a recording-rule evaluation after the last events
    finally:
        stop.set()
        reader.join(timeout=15)
    return settings


def test_every_panel_of_every_dashboard_returns_data_on_the_live_stack(busy_stack):
    settings = busy_stack
    dashboards = load_dashboards()
    assert len(dashboards) == 4
    queries = [q for dashboard in dashboards.values() for q in panel_queries(dashboard)]
    assert queries
    empty = {}
    deadline = time.monotonic() + 90
    pending = queries
    while pending:
        pending = [q for q in pending if not prom(settings, q.promql)]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(5)
    empty = {f"{q.dashboard} / {q.panel} / {q.ref_id}": q.promql for q in pending}
    assert empty == {}, empty
    print(f"{len(queries)} panel queries of {len(dashboards)} dashboards returned data")
