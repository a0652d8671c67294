"""Is each part of twinlayer answering? Used by `twinlayer stack status`, the stack-health DAG and the tests.

Probes talk to the services themselves (Kafka metadata, an HBase table listing through Thrift, readiness
endpoints, Airflow's health), so they mean the same thing wherever the stack runs.
"""

from __future__ import annotations

from twinlayer.model.config import Settings
from twinlayer.ops.probes import PROBES
from twinlayer.runtime.pushgateway import push_gauges


def probe_all(settings: Settings) -> dict[str, str | None]:
    """Each service → None when it answers, else the reason it does not."""
    results: dict[str, str | None] = {}
    for name, check in PROBES.items():
        try:
            check(settings)
        except Exception as exc:  # noqa: BLE001 — a probe failure of any kind is the answer
            results[name] = f"{type(exc).__name__}: {exc}"
        else:
            results[name] = None
    return results


def probe_and_push(settings: Settings) -> dict[str, str | None]:
    """Probe every service, push ``twinlayer_service_up{service=…}`` to the Pushgateway, and return the results."""
    results = probe_all(settings)
    push_gauges(
        settings,
        job="twinlayer_stack_health",
        metric="twinlayer_service_up",
        doc="1 when the service answered its probe in the last stack-health run, else 0",
        values={(name,): 0.0 if reason else 1.0 for name, reason in results.items()},
        labelnames=("service",),
    )
    return results
