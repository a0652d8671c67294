"""Where every part of twinlayer listens and keeps its files.

One place for ports, hosts and folders so the stack, the jobs, the DAGs and the tests agree. Every value can be
overridden by an environment variable named ``TWINLAYER_<FIELD>`` (upper case), which is how the same code points
at a remote cluster instead of the embedded stack.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9097
    zookeeper_port: int = 2181
    hbase_master_port: int = 16000
    hbase_regionserver_port: int = 16020
    thrift_port: int = 9090
    prometheus_port: int = 19090
    alertmanager_port: int = 19093
    pushgateway_port: int = 9091
    airflow_port: int = 8080
    postgres_port: int = 15432  # Airflow's metadata database
    kafka_jmx_port: int = 9404
    hbase_jmx_port: int = 9405
    thrift_jmx_port: int = 9406
    speed_metrics_port: int = 9108
    events_topic: str = "events"
    dlq_topic: str = "events-dlq"
    events_partitions: int = 4
    speed_table: str = "twinlayer_speed"
    batch_table: str = "twinlayer_batch"
    serving_port: int = 8000
    serving_max_range_hours: int = 7 * 24  # the longest time range one serving answer covers
    serving_connections: int = 8  # Thrift connections serving's requests share; a request waits for a free one
    serving_publications_max_age_seconds: float = 0.5  # a publish reaches serving's answers within this long
    grafana_url: str = "http://127.0.0.1:3000"  # where the Lambda page links the dashboards (no Grafana here)
    alert_log_port: int = 19095  # fixed in monitoring/alertmanager/alertmanager.yml
    speed_ttl_seconds: int = 8 * 24 * 3600
    # how far out of order an event may arrive and still count in the speed layer's views; later ones wait for the
    # batch layer. The dedupe keeps an event id for twice this long and scans its state every micro-batch: 30 s made
    # that scan 150-550 ms of a 1 s micro-batch at 10k events/s, 10 s makes it 70-270 ms
    watermark: str = "10 seconds"
    state_dir: Path = PROJECT_ROOT / "state"
    jars_dir: Path = PROJECT_ROOT / "build" / "jars"
    # Where each service is reached when it runs on another host (docker-compose: the service's name); empty means
    # ``host``, which is also the address the local processes bind.
    kafka_host: str = ""
    thrift_host: str = ""
    prometheus_host: str = ""
    alertmanager_host: str = ""
    pushgateway_host: str = ""
    airflow_host: str = ""
    serving_host: str = ""
    speed_metrics_host: str = ""
    alert_log_host: str = ""

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host_of('kafka_port')}:{self.kafka_port}"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def archive_dir(self) -> Path:
        """The master dataset: every valid event, Parquet, partitioned by event hour."""
        return self.state_dir / "archive"

    @property
    def batch_dir(self) -> Path:
        """Parquet snapshots of every batch version written (what the view gate validates)."""
        return self.state_dir / "batch"

    @property
    def checkpoint_dir(self) -> Path:
        return self.state_dir / "checkpoints" / "speed"

    def host_of(self, port_field: str) -> str:
        """The host that serves ``port_field`` (e.g. ``thrift_port``)."""
        return getattr(self, port_field.removesuffix("_port") + "_host", "") or self.host

    def address(self, port_field: str) -> str:
        return f"{self.host_of(port_field)}:{getattr(self, port_field)}"

    def url(self, port_field: str) -> str:
        return f"http://{self.address(port_field)}"


# Airflow connections the DAGs' tasks read their endpoints from (`make up` creates them; a person edits them under
# Admin › Connections): connection id → (the settings field of its port, what it is)
CONNECTIONS: dict[str, tuple[str, str]] = {
    "twinlayer_hbase": ("thrift_port", "HBase Thrift gateway: both layers' views and the publications"),
    "twinlayer_kafka": ("kafka_port", "Kafka bootstrap server: the events topic and its dead letters"),
    "twinlayer_pushgateway": ("pushgateway_port", "Prometheus Pushgateway: the batch layer's metrics"),
    "twinlayer_serving": ("serving_port", "The serving API: merged answers of both layers"),
}


def with_endpoints(settings: Settings, endpoints: Mapping[str, tuple[str | None, int | None]]) -> Settings:
    """``settings`` with the host and port of each connection in ``endpoints`` (an empty value keeps the setting)."""
    changes: dict[str, Any] = {}
    for conn_id, (host, port) in endpoints.items():
        port_field = CONNECTIONS[conn_id][0]
        if host:
            changes[port_field.removesuffix("_port") + "_host"] = host
        if port:
            changes[port_field] = int(port)
    return dataclasses.replace(settings, **changes)


def with_connections(settings: Settings, get: Callable[[str], Any], missing: type[Exception]) -> Settings:
    """``settings`` with the host and port of each twinlayer connection ``get`` returns (``missing``: not defined),
    however the caller reads Airflow's connections (a task through the task SDK, the API server from its database)."""
    endpoints = {}
    for conn_id in CONNECTIONS:
        try:
            connection = get(conn_id)
        except missing:
            continue
        endpoints[conn_id] = (connection.host, connection.port)
    return with_endpoints(settings, endpoints)


def connection_specs(settings: Settings) -> list[dict[str, Any]]:
    """The connections as Airflow's REST API creates them, pointing at ``settings``' endpoints."""
    return [
        {
            "connection_id": conn_id,
            "conn_type": "generic",
            "host": settings.host_of(port_field),
            "port": getattr(settings, port_field),
            "description": what,
        }
        for conn_id, (port_field, what) in CONNECTIONS.items()
    ]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings with ``TWINLAYER_*`` overrides applied; raises ValueError naming a malformed variable."""
    source: Mapping[str, str] = os.environ if environ is None else environ
    overrides: dict[str, Any] = {}
    for field in dataclasses.fields(Settings):
        raw = source.get(f"TWINLAYER_{field.name.upper()}")
        if raw is None:
            continue
        if field.type == "int":
            try:
                overrides[field.name] = int(raw)
            except ValueError:
                raise ValueError(f"TWINLAYER_{field.name.upper()} must be an integer, got {raw!r}") from None
        elif field.type == "float":
            try:
                overrides[field.name] = float(raw)
            except ValueError:
                raise ValueError(f"TWINLAYER_{field.name.upper()} must be a number, got {raw!r}") from None
        elif field.type == "Path":
            overrides[field.name] = Path(raw).resolve()
        else:
            overrides[field.name] = raw
    return Settings(**overrides)
