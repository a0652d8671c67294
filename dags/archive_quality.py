"""
### Archive quality

Hourly, for the hour that just closed: is the master dataset sound?

1. every file the archive's commit logs list is on disk (a missing one would fail every recompute of its hour);
   files no commit lists — left by a micro-batch that crashed before committing, never read — are counted;
2. the hour's records pass the raw Great Expectations suite (no nulls in required fields, known enumerations,
   event times inside the hour, at least one record).

Results go to the Pushgateway (`twinlayer_archive_missing_files`, `twinlayer_archive_orphan_files`,
`twinlayer_batch_gate_success{gate="archive"}`); a failure turns the run red with every failed expectation in the
task log. Unlike the recompute's own gate this one publishes nothing and stops nothing: it watches the archive.

A passed check is an event of the **twinlayer_raw_archive** asset whose extra names the hour and its records: the
archive is written by the speed layer outside Airflow, and this is where Airflow learns an hour of it is sound.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task
from airflow.sdk.exceptions import AirflowFailException
from common.assets import RAW_ARCHIVE
from common.connections import task_settings


@dag(
    dag_id="twinlayer_archive_quality",
    schedule=CronDataIntervalTimetable("10 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["twinlayer", "quality"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=2)},
    doc_md=__doc__,
)
def twinlayer_archive_quality():
    @task(retries=0, outlets=[RAW_ARCHIVE])
    def check_archive(data_interval_end=None, outlet_events=None) -> dict:
        from twinlayer.batch.gates import check_archive
        from twinlayer.batch.quality import QualityGateFailed
        from twinlayer.model.hours import HOUR_MS, floor_hour, hour_label

        hour_ms = floor_hour(int(data_interval_end.timestamp() * 1000)) - HOUR_MS
        try:
            facts = check_archive(task_settings(), hour_ms)
        except QualityGateFailed as exc:
            raise AirflowFailException(str(exc)) from None
        outlet_events[RAW_ARCHIVE].extra = {"hour": hour_label(hour_ms), "records": facts.get("raw_rows")}
        return facts

    check_archive()


twinlayer_archive_quality()
