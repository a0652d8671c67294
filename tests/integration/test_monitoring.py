"""Prometheus scrapes the stack, Pushgateway metrics reach Prometheus, Alertmanager takes and lists alerts."""

import datetime as dt
import time

import pytest
import requests
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    delete_from_gateway,
    push_to_gateway,
)

pytestmark = pytest.mark.integration

STACK_JOBS = {"prometheus", "alertmanager", "pushgateway", "kafka", "hbase", "hbase-thrift", "speed-layer", "serving"}


def prom_query(settings, expr):
    response = requests.get(f"{settings.url('prometheus_port')}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def eventually(probe, timeout=45.0, interval=1.0):
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def test_every_stack_target_is_scraped_and_up(stack, settings):
    def all_up():
        targets = requests.get(f"{settings.url('prometheus_port')}/api/v1/targets", timeout=5).json()["data"]
        health = {t["labels"]["job"]: t["health"] for t in targets["activeTargets"]}
        return health if health.keys() >= STACK_JOBS and all(health[j] == "up" for j in STACK_JOBS) else None

    health = eventually(all_up)
    assert health, "not every stack target is up in Prometheus"
    up = {r["metric"]["job"]: float(r["value"][1]) for r in prom_query(settings, "up")}
    assert {job: up.get(job) for job in STACK_JOBS} == dict.fromkeys(STACK_JOBS, 1.0)


def test_jvm_services_export_their_own_metrics(stack, settings):
    assert eventually(lambda: prom_query(settings, 'jvm_memory_used_bytes{job="kafka",area="heap"}'))
    assert eventually(lambda: prom_query(settings, 'jvm_memory_used_bytes{job="hbase",area="heap"}'))


def test_metric_pushed_to_pushgateway_is_visible_in_prometheus(stack, settings, unique_name):
    registry = CollectorRegistry()
    gauge = Gauge("twinlayer_test_pushed_value", "A value pushed by the test suite", registry=registry)
    gauge.set(42.5)
    gateway = f"{settings.host}:{settings.pushgateway_port}"
    push_to_gateway(gateway, job=unique_name, registry=registry)
    try:
        expr = f'twinlayer_test_pushed_value{{job="{unique_name}"}}'
        result = eventually(lambda: prom_query(settings, expr))
        assert result, f"{expr} never appeared in Prometheus"
        assert float(result[0]["value"][1]) == 42.5
    finally:
        delete_from_gateway(gateway, job=unique_name)


def test_alertmanager_accepts_and_lists_an_alert(stack, settings, unique_name):
    base = settings.url("alertmanager_port")
    now = dt.datetime.now(dt.UTC)
    alert = {
        "labels": {"alertname": unique_name, "severity": "info", "job": "twinlayer-tests"},
        "annotations": {"summary": "posted by the test suite"},
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(minutes=5)).isoformat(),
    }
    assert requests.post(f"{base}/api/v2/alerts", json=[alert], timeout=5).status_code == 200

    def listed():
        alerts = requests.get(
            f"{base}/api/v2/alerts", params={"filter": f'alertname="{unique_name}"'}, timeout=5
        ).json()
        return alerts

    alerts = eventually(listed, timeout=15)
    assert len(alerts) == 1
    assert alerts[0]["labels"]["alertname"] == unique_name
    assert alerts[0]["status"]["state"] == "active"
