"""
### Hourly batch recompute

For the hour of the data interval:

1. **hour_closed** — waits two minutes past the hour's end (the speed layer's watermark and archive trigger), and
   until, on every partition, the archive has committed a record Kafka received after that or every record the
   partition holds: with the speed layer down or behind, the hour waits instead of being published short
   (`twinlayer_archive_unread_records`);
2. **validate_raw** — Great Expectations on the archived hour (nulls, enumerations, event times inside the hour,
   reconciliation with what the speed layer counted); a failure stops the run, nothing is published. An event id
   sent twice with different contents counts once, as the record Kafka received first
   (`twinlayer_batch_conflicting_duplicates`);
3. **recompute** — `spark_jobs/batch_recompute.py` through `SparkSubmitOperator` (connection `twinlayer_spark`,
   defined by the `AIRFLOW_CONN_TWINLAYER_SPARK` environment variable): the same view definitions as the speed
   layer, written to HBase as a new version of the hour;
4. **validate_version** — Great Expectations on the new version (schema, ranges, totals equal the raw counts);
5. **publish** — one atomic check-and-put moves the hour's pointer to the version the gate passed (the previous one
   stays for `twinlayer rollback`; an older version never replaces a newer one), which moves the serving time
   boundary;
6. **drift** — batch vs speed per view for the hour → `twinlayer_batch_drift_ratio` in the Pushgateway;
7. **export_metrics** — rows, durations, last success.

Publishing is an event of the **twinlayer_batch_views** asset whose extra carries the hour, the version and the ones
before it. The tasks reach HBase, Kafka and the Pushgateway through the Airflow connections `twinlayer_hbase`,
`twinlayer_kafka` and `twinlayer_pushgateway` (Admin › Connections; the batch job gets them as environment
variables). The Lambda page (Airflow's navigation) shows each hour's state and recomputes, rolls back or backfills.

Serving answers a published hour from the batch layer; its speed cells are not deleted (a delete marker would mask
any later rewrite of those windows) but expire by the speed table's TTL, eight days after their window.

Every task reads and writes only its hour, so `airflow backfill create --dag-id twinlayer_recompute ...` (or the
UI's backfill) recomputes any range; a rerun of an hour writes byte-identical cells.
"""

from __future__ import annotations

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import CronDataIntervalTimetable, PokeReturnValue, dag, task
from airflow.sdk.exceptions import AirflowFailException
from common.assets import BATCH_VIEWS, RAW_ARCHIVE
from common.connections import ENDPOINT_VARIABLES, endpoint_environment, task_settings

from twinlayer.model.config import PROJECT_ROOT

HOUR_START = "{{ data_interval_start.int_timestamp * 1000 }}"
HOUR_END = "{{ data_interval_end.int_timestamp * 1000 }}"


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


@dag(
    dag_id="twinlayer_recompute",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    tags=["twinlayer", "batch"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    doc_md=__doc__,
    user_defined_macros={"twinlayer_endpoints": endpoint_environment},
)
def twinlayer_recompute():
    @task.sensor(poke_interval=30, timeout=3 * 3600, mode="reschedule", inlets=[RAW_ARCHIVE])
    def hour_closed(data_interval_end=None) -> PokeReturnValue:
        from twinlayer.batch.late import hour_is_closed

        return PokeReturnValue(is_done=hour_is_closed(task_settings(), _ms(data_interval_end)))

    @task(retries=0)
    def validate_raw(data_interval_start=None) -> dict:
        from twinlayer.batch.gates import gate_raw
        from twinlayer.batch.quality import QualityGateFailed

        try:
            return gate_raw(task_settings(), _ms(data_interval_start)).facts
        except QualityGateFailed as exc:
            raise AirflowFailException(str(exc)) from None

    recompute = SparkSubmitOperator(
        task_id="recompute",
        conn_id="twinlayer_spark",
        application=str(PROJECT_ROOT / "spark_jobs" / "batch_recompute.py"),
        application_args=["--start", HOUR_START, "--end", HOUR_END],
        name="twinlayer-batch-recompute",
        env_vars={name: f"{{{{ twinlayer_endpoints()['{name}'] }}}}" for name in ENDPOINT_VARIABLES},
        conf={
            "spark.sql.shuffle.partitions": "4",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
        },
        driver_memory="2g",
    )

    @task(retries=0)
    def validate_version(raw_facts: dict, data_interval_start=None) -> int:
        from twinlayer.batch.gates import gate_version
        from twinlayer.batch.quality import QualityGateFailed

        try:
            return gate_version(task_settings(), _ms(data_interval_start), raw_facts).facts["version"]
        except QualityGateFailed as exc:
            raise AirflowFailException(str(exc)) from None

    @task(outlets=[BATCH_VIEWS])
    def publish(version: int, data_interval_start=None, outlet_events=None) -> dict:
        from twinlayer.batch.publish import publish_hour
        from twinlayer.model.hours import hour_label

        hour_ms = _ms(data_interval_start)
        entry = publish_hour(task_settings(), hour_ms, version)
        outlet_events[BATCH_VIEWS].extra = {"hour": hour_label(hour_ms), **entry}
        return entry

    @task
    def drift(data_interval_start=None) -> dict:
        from twinlayer.batch.drift import hour_drift

        return hour_drift(task_settings(), _ms(data_interval_start))

    @task
    def export_metrics(data_interval_start=None, dag_run=None) -> None:
        from twinlayer.batch.report import export_run_metrics

        started = dag_run.start_date or pendulum.now("UTC")
        export_run_metrics(task_settings(), _ms(data_interval_start), (pendulum.now("UTC") - started).total_seconds())

    raw_facts = validate_raw()
    hour_closed() >> raw_facts >> recompute
    version = validate_version(raw_facts)
    recompute >> version
    publish(version) >> drift() >> export_metrics()


twinlayer_recompute()
