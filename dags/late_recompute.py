"""
### Late-data recompute

Every half hour: which closed hours hold more archived records than their published version read? Those hours
received events after they were recomputed — events later than the speed layer's watermark, which it dropped and
counted in `twinlayer_speed_late_events_dropped_total` — or were never published because their hourly run found
them empty or failed (counted once that run has had an hour). For each such hour of the last week this DAG
triggers a run of **twinlayer_recompute** for exactly that hour (its data interval), which gates, recomputes,
publishes the new version (the old one stays for rollback) and measures it like any other run.

The triggered run id is `late__<hour>__<archived records>` (each mapped task is named by its hour): a second look
at an unchanged archive triggers nothing new (so it does not undo a rollback either).
`twinlayer_batch_late_hours` (from **twinlayer_metric_export**) shows what is waiting.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task
from common.assets import BATCH_VIEWS
from common.connections import task_settings


@dag(
    dag_id="twinlayer_late_recompute",
    schedule="15,45 * * * *",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["twinlayer", "batch", "late-data"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    doc_md=__doc__,
)
def twinlayer_late_recompute():
    @task(inlets=[BATCH_VIEWS])
    def find_late_hours() -> list[dict]:
        from twinlayer.batch.late import late_hours, recompute_requests

        stale = late_hours(task_settings())
        for item in stale:
            print(
                f"{item['hour']}: published version read {item['published']} records, the archive now holds "
                f"{item['archived']}"
            )
        return recompute_requests(stale)

    TriggerDagRunOperator.partial(
        task_id="recompute_late_hour",
        trigger_dag_id="twinlayer_recompute",
        skip_when_already_exists=True,
        map_index_template="{{ task.trigger_run_id.split('__')[1] }}",  # the hour
    ).expand_kwargs(find_late_hours())


twinlayer_late_recompute()
