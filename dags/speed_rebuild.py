"""
### Speed-layer views rebuild

Triggered by hand (**Trigger DAG** with `since`: ISO-8601, epoch ms, or `2h` for two hours ago): asks the running
speed layer to compute its views again from the Kafka records received since then, and waits until it has, logging
its progress. The archive keeps going meanwhile; the live views wait behind the rebuilt range. The same as
`twinlayer speed rebuild --since …`; the speed layer also rebuilds by itself when it starts with changed view
definitions (README, "Changing a view").
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task
from common.connections import task_settings


@dag(
    dag_id="twinlayer_speed_rebuild",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["twinlayer", "speed"],
    params={"since": Param("2h", type="string", description="Kafka time to rebuild from: ISO-8601, epoch ms or 2h")},
    doc_md=__doc__,
)
def twinlayer_speed_rebuild():
    @task(retries=1, retry_delay=pendulum.duration(seconds=30), execution_timeout=pendulum.duration(hours=2))
    def rebuild_views(params=None) -> dict:
        import logging
        import time

        from twinlayer.model.hours import parse_time
        from twinlayer.speed import rebuild

        log = logging.getLogger("twinlayer.speed_rebuild")
        folder = task_settings().checkpoint_dir
        current = rebuild.read_status(folder)
        if current is None or current.state == "done":  # a retry follows the rebuild its first try asked for
            rebuild.request(folder, parse_time(str(params["since"]), int(time.time() * 1000)))
        shown = [0.0]

        def show(status: rebuild.Status) -> None:
            if time.monotonic() - shown[0] >= 10 and status.started_ms:
                shown[0] = time.monotonic()
                log.info("%s: %d of %d records", status.state, status.records_done, status.records_total)

        done = rebuild.wait(folder, 7200, show)
        return {"since_ms": done.since_ms, "records": done.records_done, "seconds": done.seconds}

    rebuild_views()


twinlayer_speed_rebuild()
