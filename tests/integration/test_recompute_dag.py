"""The recompute DAG run by the stack's real Airflow (scheduler, LocalExecutor, SparkSubmitOperator) for one past
hour of the stack's own pipeline, then read back through the serving HTTP API."""

import random
import time

import pytest
import requests

from tests import truth
from twinlayer import batch
from twinlayer.airflow_api import AirflowClient
from twinlayer.generator import Workload, produce
from twinlayer.speed import read_archive

pytestmark = pytest.mark.integration
DAG_ID = "twinlayer_recompute"


def unused_past_hour(spark, settings) -> int:
    """An hour between one and six days ago that the stack's archive has no record of yet."""
    from pyspark.sql import functions as F

    archive = read_archive(spark, settings.archive_dir)
    used = set() if archive is None else {r.event_hour for r in archive.select("event_hour").distinct().collect()}
    now_hour = int(time.time() * 1000) // batch.HOUR_MS * batch.HOUR_MS
    candidates = [now_hour - h * batch.HOUR_MS for h in range(24, 144)]
    random.Random().shuffle(candidates)
    return next(h for h in candidates if batch.hour_label(h) not in used)


def test_dag_run_recomputes_publishes_and_serving_answers_from_the_batch_layer(stack, settings, spark):
    hour = unused_past_hour(spark, settings)
    ticks = iter(range(10_000))
    produce(settings.kafka_bootstrap, settings.events_topic,
            Workload(rate=0, count=3000, duplicate_fraction=0.05, seed=31),
            clock=lambda: hour + 1000 + next(ticks) * 1000)  # 3000 events over the hour's first 50 minutes
    deadline = time.monotonic() + 120
    while True:  # the stack's speed layer archives them (late for its views, which is the batch layer's job)
        archive = read_archive(spark, settings.archive_dir)
        if archive is not None and archive.where(f"event_hour = '{batch.hour_label(hour)}'").count() >= 3000:
            break
        assert time.monotonic() < deadline, "the stack's speed layer did not archive the events"
        time.sleep(3)

    run_id = f"test_{batch.hour_label(hour)}_{int(time.time())}"
    result = AirflowClient(settings.url("airflow_port")).run_interval(DAG_ID, hour, hour + batch.HOUR_MS, run_id)
    assert result["state"] == "success", result["tasks"]
    assert set(result["tasks"].values()) == {"success"}
    print(f"DAG run wall time: {result['seconds']:.0f}s")

    records = [r for r in truth.read_topic(settings.kafka_bootstrap, settings.events_topic)
               if hour <= (truth.event_time_of(r) or 0) < hour + batch.HOUR_MS]
    events = truth.dedupe_first([e for _, e in truth.classify(records).valid])
    expected = {c: v for c, v in truth.view_cells(events).items() if c[0] == "campaign_views_10s"}
    key = sorted({k for _, k, _ in expected})[0]
    answer = requests.get(f"{settings.url('serving_port')}/views/campaign_views_10s", timeout=10,
                          params={"key": key, "from": str(hour), "to": str(hour + batch.HOUR_MS)}).json()
    assert answer["boundary_ms"] >= hour + batch.HOUR_MS
    assert {w["window_start_ms"]: w["views"] for w in answer["windows"]} == \
        {s: c["views"] for (_, k, s), c in expected.items() if k == key}
    assert {w["source"] for w in answer["windows"]} == {"batch"}
