"""Pushing batch-style metrics (from Airflow tasks and CLI runs) to the Pushgateway that Prometheus scrapes.

Long-running processes (the speed layer, the serving API) expose /metrics themselves; short-lived work pushes one
group per job and grouping key, replacing the previous values of that group.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from twinlayer.model.config import Settings


def push_gauges(
    settings: Settings,
    job: str,
    metric: str,
    doc: str,
    values: Mapping[tuple[str, ...], float],
    labelnames: tuple[str, ...],
    grouping_key: Mapping[str, str] | None = None,
) -> None:
    """Push one gauge family ``metric`` with a sample per label tuple in ``values``."""
    registry = CollectorRegistry()
    gauge = Gauge(metric, doc, labelnames=labelnames, registry=registry)
    for labels, value in values.items():
        (gauge.labels(*labels) if labelnames else gauge).set(value)
    push_to_gateway(
        settings.address("pushgateway_port"),
        job=job,
        registry=registry,
        grouping_key=dict(grouping_key or {}),
        timeout=10,
    )
