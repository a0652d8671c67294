"""
### Stack health

Every five minutes, asks each service of twinlayer whether it answers — Kafka metadata, an HBase table listing
through Thrift, Prometheus / Alertmanager / Pushgateway readiness and Airflow's own health — and pushes
`twinlayer_service_up{service=...}` to the Pushgateway. The run fails, and shows red here, when any service
does not answer; its log says which and why.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from common.connections import task_settings


@dag(
    dag_id="twinlayer_stack_health",
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["twinlayer", "ops"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=30)},
    doc_md=__doc__,
)
def twinlayer_stack_health():
    @task
    def probe_services() -> dict[str, str | None]:
        from twinlayer.ops.health import probe_and_push

        results = probe_and_push(task_settings())
        down = {name: reason for name, reason in results.items() if reason}
        if down:
            raise RuntimeError("services not answering: " + "; ".join(f"{n}: {r}" for n, r in sorted(down.items())))
        return results

    probe_services()


twinlayer_stack_health()
