"""Where the tasks reach HBase Thrift, Kafka, the Pushgateway and the serving API: the Airflow connections a person
sees and edits under Admin › Connections (``make up`` creates them), over the ``TWINLAYER_*`` settings."""

from __future__ import annotations

import functools

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from twinlayer.model.config import CONNECTIONS, Settings, load_settings, with_connections


def task_settings() -> Settings:
    """The settings a task runs with: each connection that exists overrides its endpoint."""
    return with_connections(load_settings(), BaseHook.get_connection, AirflowNotFoundException)


ENDPOINT_VARIABLES = [
    f"TWINLAYER_{field.upper()}"
    for port_field, _ in CONNECTIONS.values()
    for field in (port_field.removesuffix("_port") + "_host", port_field)
]


@functools.cache
def endpoint_environment() -> dict[str, str]:
    """The same endpoints as ``TWINLAYER_*`` variables (``ENDPOINT_VARIABLES``), for a job Airflow starts in a
    process of its own; a DAG's templates read them through the ``twinlayer_endpoints`` macro."""
    settings = task_settings()
    variables = {}
    for port_field, _ in CONNECTIONS.values():
        host_field = port_field.removesuffix("_port") + "_host"
        variables[f"TWINLAYER_{host_field.upper()}"] = settings.host_of(port_field)
        variables[f"TWINLAYER_{port_field.upper()}"] = str(getattr(settings, port_field))
    return variables
