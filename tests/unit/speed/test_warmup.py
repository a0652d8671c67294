"""The warm-up's generated records take both paths of the parser (valid events across every view, and refused
records), so the plans compiled during the warm-up are the ones live traffic runs; and its queries stay out of the
speed layer's metrics. Local Spark, no services."""

import time

from prometheus_client import generate_latest
from pyspark.sql import functions as F

from twinlayer.model import events as ev
from twinlayer.speed import WARMUP_PREFIX
from twinlayer.speed.metrics import ProgressListener, SpeedMetrics
from twinlayer.speed.parse import campaign_mapping, parse_events
from twinlayer.speed.warmup import REFUSED_EVERY, payloads, warmup_topic


def test_warmup_records_parse_as_live_traffic_does(spark):
    now_ms = int(time.time() * 1000)
    records = payloads(1000, now_ms)
    assert len(records) == 1000
    raw = spark.createDataFrame(
        [(r.decode(), 0, i, now_ms) for i, r in enumerate(records)], "value string, partition int, offset long, t long"
    ).select(
        F.col("value").cast("binary").alias("value"), "partition", "offset", F.timestamp_millis("t").alias("timestamp")
    )
    parsed = parse_events(raw, campaign_mapping(spark)).cache()
    errors = {r["error"]: r["n"] for r in parsed.groupBy("error").agg(F.count("*").alias("n")).collect()}
    assert errors == {None: 1000 - 1000 // REFUSED_EVERY, ev.REASON_MALFORMED: 1000 // REFUSED_EVERY}
    valid = parsed.where("error IS NULL")
    assert {r[0] for r in valid.select("event_type").distinct().collect()} == set(ev.EVENT_TYPES)
    assert valid.where("event_time_ms > " + str(now_ms)).count() == 0
    assert valid.select("event_id").distinct().count() == valid.count()
    assert warmup_topic("events") == "events-warmup"


def _event(name):
    return {"id": f"id-{name}", "runId": "run", "name": name}


def test_warmup_queries_leave_the_speed_layer_metrics_alone():
    metrics = SpeedMetrics()
    listener = ProgressListener(metrics)
    name = f"{WARMUP_PREFIX}views"
    listener.onQueryStarted(_event(name))
    listener.onQueryProgress(
        {"name": name, "batchId": 0, "numInputRows": 4000, "durationMs": {"triggerExecution": 9000}}
    )
    listener.onQueryTerminated(_event(name))
    listener.onQueryStarted(_event("views"))
    text = generate_latest(metrics.registry).decode()
    assert WARMUP_PREFIX not in text
    assert 'twinlayer_speed_query_active{query="views"} 1.0' in text
