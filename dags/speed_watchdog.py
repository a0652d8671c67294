"""
### Speed-layer watchdog

Every two minutes: is every streaming query of the speed layer (views, ingest) running and has each
reported progress in the last two minutes? If not, the speed layer is restarted through the stack's supervisor
(it resumes from its checkpoints) and this run fails, so the incident shows here in red with its reason.
`twinlayer_speed_watchdog_healthy` in the Pushgateway records each verdict.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException
from common.connections import task_settings


@dag(
    dag_id="twinlayer_speed_watchdog",
    schedule="*/2 * * * *",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["twinlayer", "ops", "speed"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=20)},
    doc_md=__doc__,
)
def twinlayer_speed_watchdog():
    @task(retries=0)
    def check_speed_layer() -> dict:
        from twinlayer.localstack.stack import Stack
        from twinlayer.ops.watchdog import check_and_heal

        settings = task_settings()
        verdict = check_and_heal(settings, restart=lambda: Stack(settings).restart_supervised("speed-layer"))
        if verdict["problem"]:
            action = (
                "restarted it"
                if verdict["restarted"]
                else "did not restart it (no supervisor here, or it stopped itself for an operator: see its log)"
            )
            raise AirflowFailException(f"speed layer unhealthy: {verdict['problem']}; {action}")
        return verdict

    check_speed_layer()


twinlayer_speed_watchdog()
