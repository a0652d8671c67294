"""
### Metric export

Every five minutes, and at once when an hour is published (**twinlayer_batch_views**) or an archived hour passes
its check (**twinlayer_raw_archive**): what the master dataset and the batch layer hold right now — archived records
and hours, published hours and the serving time boundary, hours with late events not yet recomputed and how many
records they miss — pushed to the Pushgateway for the lambda-overview dashboard and the alerts. It reads the
archive's commit logs and Parquet footers and one HBase row; no Spark.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task
from common.assets import BATCH_VIEWS, RAW_ARCHIVE
from common.connections import task_settings


@dag(
    dag_id="twinlayer_metric_export",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC"), assets=(BATCH_VIEWS | RAW_ARCHIVE)
    ),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["twinlayer", "ops", "metrics"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=30)},
    doc_md=__doc__,
)
def twinlayer_metric_export():
    @task
    def export_state() -> dict:
        from twinlayer.batch.report import export_state_metrics

        return export_state_metrics(task_settings())

    export_state()


twinlayer_metric_export()
