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
"""

from __future__ import annotations

import pendulum
from airflow.exceptions import AirflowFailException
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable
from common.assets import RAW_ARCHIVE


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
    @task(retries=0, inlets=[RAW_ARCHIVE])
    def check_archive(data_interval_end=None) -> dict:
        from twinlayer.batch.gates import check_archive
        from twinlayer.batch.quality import QualityGateFailed
        from twinlayer.model.config import load_settings
        from twinlayer.model.hours import HOUR_MS, floor_hour

        hour_ms = floor_hour(int(data_interval_end.timestamp() * 1000)) - HOUR_MS
        try:
            return check_archive(load_settings(), hour_ms)
        except QualityGateFailed as exc:
            raise AirflowFailException(str(exc)) from None

    check_archive()


twinlayer_archive_quality()
