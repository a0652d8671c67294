"""Batch-layer and serving benchmarks on the running embedded stack (`make up` first). Prints figures only.

python benchmarks/batch_and_serving.py batch [--rows 5000000]
    Writes a synthetic hour of N archived events (through Spark's file sink, as the speed layer commits them)
    into a scratch state folder, then times `recompute_hour` — read, dedupe, every view, snapshot and the
    HBase write — and reports archived rows per second of that time.

python benchmarks/batch_and_serving.py serving [--qps 50] [--seconds 30] [--ingest 5000]
    Sends events at --ingest events/s while querying the serving HTTP API at --qps for --seconds; reports the
    latency percentiles seen by the client.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from twinlayer.model.config import load_settings

SETTINGS = load_settings()


def batch(args) -> None:
    from pyspark.sql import functions as F

    from twinlayer.batch.recompute import recompute_hour
    from twinlayer.model import events as ev
    from twinlayer.model.hours import HOUR_MS, hour_label
    from twinlayer.runtime.spark import build_session

    root = Path(tempfile.mkdtemp(prefix="twinlayer-bench-batch-"))
    settings = dataclasses.replace(SETTINGS, state_dir=root, batch_table=f"bench_batch_{int(time.time())}")
    spark = build_session("benchmark-batch", settings, {"spark.sql.shuffle.partitions": "4"})
    spark.sparkContext.setLogLevel("ERROR")
    hour = (int(time.time() * 1000) // HOUR_MS - 30) * HOUR_MS
    ads = spark.createDataFrame(sorted(ev.ad_campaigns().items()), "ad_id string, campaign_id string")
    ads = ads.withColumn(
        "ad_index",
        F.row_number().over(__import__("pyspark.sql.window", fromlist=["Window"]).Window.orderBy("ad_id")) - 1,
    )
    n = args.rows
    synthetic = (
        spark.range(n)
        .withColumn("ad_index", (F.col("id") * 7919) % 1000)
        .join(F.broadcast(ads), "ad_index")
        .select(
            F.concat(F.lit("e-"), F.col("id")).alias("event_id"),
            F.concat(F.lit("u-"), (F.col("id") * 31) % 50_000).alias("user_id"),
            F.lit("p-1").alias("page_id"),
            "ad_id",
            F.element_at(F.array(*[F.lit(t) for t in ev.AD_TYPES]), (F.col("id") % 5 + 1).cast("int")).alias("ad_type"),
            F.element_at(F.array(*[F.lit(t) for t in ev.EVENT_TYPES]), (F.col("id") % 3 + 1).cast("int")).alias(
                "event_type"
            ),
            F.lit("10.0.0.1").alias("ip_address"),
            (F.lit(hour) + (F.col("id") * HOUR_MS) / n).cast("long").alias("event_time_ms"),
            "campaign_id",
            (F.col("id") % 4).cast("int").alias("kafka_partition"),
            F.col("id").alias("kafka_offset"),
        )
        .withColumn("event_time", F.timestamp_millis("event_time_ms"))
        .withColumn("kafka_timestamp", F.col("event_time"))
        .withColumn("event_hour", F.lit(hour_label(hour)))
    )
    staging = root / "staging"
    synthetic.repartition(8).write.parquet(str(staging))
    stream = spark.readStream.schema(spark.read.parquet(str(staging)).schema).parquet(str(staging))
    query = (
        stream.writeStream.format("parquet")
        .partitionBy("event_hour")
        .option("path", str(settings.archive_dir / "epoch=0001"))
        .option("checkpointLocation", str(root / "cp"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    print(f"archive: {n:,} events in hour {hour_label(hour)}")
    for attempt in ("cold", "warm"):
        result = recompute_hour(spark, settings, hour)
        print(
            f"recompute ({attempt}): {result.raw_rows:,} rows, {result.view_rows:,} view rows, "
            f"{result.seconds:.1f}s -> {result.raw_rows / result.seconds:,.0f} archived rows/s (HBase write included)"
        )
    spark.stop()
    shutil.rmtree(root, ignore_errors=True)


def serving(args) -> None:
    from twinlayer.localstack.generator import Workload, produce
    from twinlayer.model.events import campaign_ids

    campaigns = campaign_ids()
    sender = threading.Thread(
        target=produce,
        daemon=True,
        args=(SETTINGS.kafka_bootstrap, SETTINGS.events_topic, Workload(rate=args.ingest, duration=args.seconds + 5)),
    )
    sender.start()
    time.sleep(3)
    session = requests.Session()
    url = f"{SETTINGS.url('serving_port')}/views/campaign_views_10s"
    latencies, errors = [], 0
    interval = 1.0 / args.qps
    started = time.perf_counter()
    next_at = started
    while time.perf_counter() - started < args.seconds:
        next_at += interval
        t = time.perf_counter()
        response = session.get(url, params={"key": random.choice(campaigns), "from": "15m"}, timeout=5)
        latencies.append(time.perf_counter() - t)
        errors += response.status_code != 200
        time.sleep(max(0.0, next_at - time.perf_counter()))
    sender.join()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"serving at {len(latencies) / args.seconds:.0f} queries/s during {args.ingest:,} events/s ingest: "
        f"{len(latencies)} requests, {errors} errors, p50 {q[49] * 1000:.1f} ms, p90 {q[89] * 1000:.1f} ms, "
        f"p99 {q[98] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("batch")
    b.add_argument("--rows", type=int, default=5_000_000)
    b.set_defaults(func=batch)
    s = sub.add_parser("serving")
    s.add_argument("--qps", type=float, default=50)
    s.add_argument("--seconds", type=float, default=30)
    s.add_argument("--ingest", type=float, default=5000)
    s.set_defaults(func=serving)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
