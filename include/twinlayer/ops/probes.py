"""Is each part of twinlayer answering? One probe per service, wherever it runs (the embedded stack, compose, a
cluster): each returns quietly when the service answers and raises ``ProbeFailed`` (or the client's error) naming
what is wrong. Used by `make up`, `twinlayer stack status`, the stack-health DAG, the container healthchecks and
the tests.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

from twinlayer.model.config import Settings
from twinlayer.speed import QUERIES
from twinlayer.storage import hbase as hbase_store


class ProbeFailed(RuntimeError):
    """A service answered, but not as a healthy one does."""


def _http_ok(url: str, timeout: float = 3.0) -> bytes:
    import requests

    response = requests.get(url, timeout=timeout)
    if response.status_code != 200:
        raise ProbeFailed(f"{url} answered HTTP {response.status_code}")
    return response.content


def port_open(settings: Settings, port: int, host: str | None = None) -> None:
    """Fails fast while nothing listens yet, before a client library's own (long) connection timeouts."""
    with socket.create_connection((host or settings.host, port), timeout=2):
        pass


def check_kafka(settings: Settings) -> None:
    from kafka import KafkaAdminClient

    port_open(settings, settings.kafka_port, settings.host_of("kafka_port"))
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000, client_id="twinlayer-health"
    )
    try:
        cluster = admin.describe_cluster()
        if not cluster.get("brokers"):
            raise ProbeFailed("Kafka answered but reports no broker")
    finally:
        admin.close()


def check_hbase(settings: Settings) -> None:
    port_open(settings, settings.thrift_port, settings.host_of("thrift_port"))
    hbase_store.check_gateway(settings.host_of("thrift_port"), settings.thrift_port)


def check_prometheus(settings: Settings) -> None:
    _http_ok(f"{settings.url('prometheus_port')}/-/ready")


def check_alertmanager(settings: Settings) -> None:
    _http_ok(f"{settings.url('alertmanager_port')}/-/ready")


def check_pushgateway(settings: Settings) -> None:
    _http_ok(f"{settings.url('pushgateway_port')}/-/ready")


def check_airflow(settings: Settings) -> None:
    health = json.loads(_http_ok(f"{settings.url('airflow_port')}/api/v2/monitor/health"))
    unhealthy = [part for part, state in health.items() if isinstance(state, dict) and state.get("status") != "healthy"]
    if unhealthy:
        raise ProbeFailed(f"Airflow parts not healthy yet: {', '.join(sorted(unhealthy))}")


def check_speed_layer(settings: Settings) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    body = _http_ok(f"{settings.url('speed_metrics_port')}/metrics").decode()
    samples = {
        (s.name, s.labels.get("query")): s.value for f in text_string_to_metric_families(body) for s in f.samples
    }
    idle = sorted(q for q in QUERIES if samples.get(("twinlayer_speed_query_active", q)) != 1.0)
    if idle:
        raise ProbeFailed(f"speed-layer queries not running: {', '.join(idle)}")
    cold = sorted(q for q in QUERIES if samples.get(("twinlayer_speed_query_ready", q)) != 1.0)
    if cold:
        raise ProbeFailed(f"speed-layer queries started, not yet through their first micro-batch: {', '.join(cold)}")


def check_serving(settings: Settings) -> None:
    _http_ok(f"{settings.url('serving_port')}/healthz")


def check_alert_log(settings: Settings) -> None:
    _http_ok(f"{settings.url('alert_log_port')}/healthz")


def check_listening(port_field: str) -> Callable[[Settings], None]:
    def check(settings: Settings) -> None:
        port_open(settings, getattr(settings, port_field))

    return check


def check_process_only(settings: Settings) -> None:
    """For processes whose answer is checked through another service (the Airflow workers behind its health)."""


# What "answers" means for each part of the stack, independent of how the part was started (here, compose, a cluster).
PROBES: dict[str, Callable[[Settings], None]] = {
    "kafka": check_kafka,
    "hbase": check_hbase,
    "prometheus": check_prometheus,
    "alertmanager": check_alertmanager,
    "pushgateway": check_pushgateway,
    "airflow": check_airflow,
    "speed-layer": check_speed_layer,
    "serving": check_serving,
    "alert-log": check_alert_log,
}
