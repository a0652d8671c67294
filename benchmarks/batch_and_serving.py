"""Batch-layer and serving benchmarks on the running embedded stack (`make up` first). Prints figures only.

python benchmarks/batch_and_serving.py batch [--rows 5000000]
    Writes a synthetic hour of N archived events (one committed micro-batch, as the speed layer archives them)
    into a scratch state folder, then times `recompute_hour` — read, dedupe, every view, snapshot and the
    HBase write — and reports archived rows per second of that time.

python benchmarks/batch_and_serving.py dag-run [--events 100000]
    Sends an unused past hour N events through Kafka, waits until the stack's speed layer archived them, then runs
    twinlayer_recompute for that hour in the stack's Airflow: wall time of the run and each task's duration.

python benchmarks/batch_and_serving.py queries [--repeat 20]
    Two reads of the running stack, each repeated: one key of each view over the last 24 hours through the HTTP API,
    and every key of each view over one hour (the newest published one, else the current hour) as a pandas
    frame (``windows_frame``: the keys listed from both tables, then answered key by key). Latency p50/max.

python benchmarks/batch_and_serving.py serving [--qps 50] [--seconds 30] [--ingest 5000]
    Sends events at --ingest events/s while querying the serving HTTP API at --qps for --seconds (open loop);
    reports the latency percentiles seen by the clients. Figures also go to state/bench/batch_serving.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
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
    from twinlayer.storage import archive

    archive.write_batch(synthetic.drop("event_hour"), archive.open_epoch(settings.archive_dir, 1), batch_id=0)
    print(f"archive: {n:,} events in hour {hour_label(hour)}")
    for attempt in ("cold", "warm"):
        result = recompute_hour(spark, settings, hour)
        record(
            "batch",
            {
                "run": attempt,
                "archived_rows": result.version,
                "view_rows": result.view_rows,
                "seconds": round(result.seconds, 2),
                "archived_rows_per_s": round(result.version / result.seconds),
                "stages_s": result.stages,
            },
        )
    # where the time goes: each step of the plan alone, forced through Spark's no-op sink
    from twinlayer.batch.recompute import exact_events, hour_events
    from twinlayer.model.views import aggregate

    raw, _ = hour_events(spark, settings, hour)
    plans = {
        "read_all_columns": raw,
        "read_and_dedupe": exact_events(raw),
        "read_dedupe_aggregate_sketches_only": aggregate(exact_events(raw)),
        "read_dedupe_aggregate": aggregate(exact_events(raw), exact=True),
    }
    stages = {}
    for name, frame in plans.items():
        started = time.perf_counter()
        frame.write.format("noop").mode("overwrite").save()
        stages[name] = round(time.perf_counter() - started, 2)
    record("batch_plan_steps", {"archived_rows": n, "seconds": stages})
    spark.stop()
    shutil.rmtree(root, ignore_errors=True)


def serving(args) -> None:
    """Open loop: a request is sent every 1/qps seconds whatever the earlier ones are doing (up to 32 in flight), as
    independent clients would; latency is measured from the moment a request was due."""
    from concurrent.futures import ThreadPoolExecutor

    from twinlayer.localstack.generator import Workload, produce
    from twinlayer.model.events import campaign_ids

    campaigns = campaign_ids()
    # the ingest runs in its own process: a producer thread here would hold the interpreter lock the clients' threads
    # need to send a request and read its answer, and their waits would count as serving latency
    sender = multiprocessing.get_context("spawn").Process(
        target=produce,
        daemon=True,
        args=(SETTINGS.kafka_bootstrap, SETTINGS.events_topic, Workload(rate=args.ingest, duration=args.seconds + 5)),
    )
    sender.start()
    time.sleep(3)
    url = f"{SETTINGS.url('serving_port')}/views/campaign_views_10s"
    local = threading.local()
    latencies: list[float] = []
    errors: list[str] = []

    def one(due: float, key: str) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        try:
            response = session.get(url, params={"key": key, "from": "15m"}, timeout=5)
        except requests.RequestException as exc:
            errors.append(type(exc).__name__)
            return
        latencies.append(time.perf_counter() - due)
        if response.status_code != 200:
            errors.append(str(response.status_code))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        sent = 0
        while (due := started + sent / args.qps) < started + args.seconds:
            time.sleep(max(0.0, due - time.perf_counter()))
            pool.submit(one, due, random.choice(campaigns))
            sent += 1
    elapsed = time.perf_counter() - started
    sender.join()
    if sender.exitcode != 0:
        raise SystemExit(f"the ingest process failed (exit code {sender.exitcode}): no figures without ingest")
    q = statistics.quantiles(latencies, n=100)
    figures = {
        "qps_sent": round(sent / args.seconds, 1),
        "qps_answered": round(len(latencies) / elapsed, 1),
        "ingest_events_per_s": args.ingest,
        "requests": len(latencies),
        "errors": len(errors),
        "p50_ms": round(q[49] * 1000, 1),
        "p90_ms": round(q[89] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
    }
    record("serving", figures)


def queries(args) -> None:
    from twinlayer.batch.publish import published
    from twinlayer.model.hours import HOUR_MS, hour_label
    from twinlayer.model.views import VIEWS
    from twinlayer.serving.frames import windows_frame
    from twinlayer.serving.merge import Server

    def timed(call, *call_args):
        seconds, result = [], None
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = call(*call_args)
            seconds.append(time.perf_counter() - started)
        return {"p50_ms": round(statistics.median(seconds) * 1000, 1), "max_ms": round(max(seconds) * 1000, 1)}, result

    def one_key(url: str, key: str) -> dict:
        return session.get(url, params={"key": key, "from": "24h"}, timeout=30).json()

    session, server = requests.Session(), Server(SETTINGS)
    publications = published(server.pool, SETTINGS)
    hour = max(publications) if publications else int(time.time() * 1000) // HOUR_MS * HOUR_MS
    for view in VIEWS:
        figures, frame = timed(windows_frame, server, view, hour, hour + HOUR_MS)
        if frame.empty:
            raise SystemExit(f"{view.name} has no window in {hour_label(hour)}: send events first")
        shape = {"keys": int(frame["key"].nunique()), "windows": len(frame)}
        where = {"hour": hour_label(hour), "published": hour in publications}
        record("query_all_keys_1h", {"view": view.name, **where, **shape, **figures})
        key = str(frame["key"].iloc[0])
        figures, answer = timed(one_key, f"{SETTINGS.url('serving_port')}/views/{view.name}", key)
        sources = sorted({w["source"] for w in answer["windows"]})
        record(
            "query_one_key_24h", {"view": view.name, "windows": len(answer["windows"]), "sources": sources, **figures}
        )


def dag_run(args) -> None:
    """An unused past hour gets --events events through Kafka and the stack's speed layer (its archive), then one
    run of twinlayer_recompute for that hour in the stack's Airflow: wall time from the trigger to the run's end,
    and each task's own duration."""
    from twinlayer.localstack.airflow_api import AirflowClient
    from twinlayer.localstack.generator import Workload, produce
    from twinlayer.model.hours import HOUR_MS, hour_label
    from twinlayer.storage.archive import hour_counts

    used = hour_counts(SETTINGS.archive_dir)
    now_hour = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    hour = next(h for h in (now_hour - n * HOUR_MS for n in range(30, 160)) if hour_label(h) not in used)
    label, ticks = hour_label(hour), iter(range(args.events))
    produce(
        SETTINGS.kafka_bootstrap,
        SETTINGS.events_topic,
        Workload(rate=0, count=args.events, seed=int(time.time())),
        clock=lambda: hour + 1000 + next(ticks) * (HOUR_MS - 60_000) // args.events,
    )
    deadline = time.monotonic() + 300
    while hour_counts(SETTINGS.archive_dir).get(label, 0) < args.events:
        if time.monotonic() > deadline:
            raise SystemExit(f"the stack's speed layer did not archive {label}'s events within 300 s")
        time.sleep(2)
    archived = hour_counts(SETTINGS.archive_dir)[label]
    client = AirflowClient.for_stack(SETTINGS)
    run_id = f"bench_{label}_{int(time.time())}"
    result = client.run_interval("twinlayer_recompute", hour, hour + HOUR_MS, run_id)
    if result["state"] != "success":
        raise SystemExit(f"the run failed: {result['tasks']}")
    tasks = client.task_instances("twinlayer_recompute", run_id)
    durations = {t["task_id"]: round(t["duration"] or 0, 1) for t in tasks}
    record(
        "recompute_dag_run",
        {"hour": label, "archived_rows": archived, "seconds": round(result["seconds"], 1), "task_seconds": durations},
    )


def record(benchmark: str, figures: dict) -> None:
    """Print the figures and append them as a JSON line to state/bench/batch_serving.jsonl."""
    line = {"bench": benchmark, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    results = SETTINGS.state_dir / "bench" / "batch_serving.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as out:
        out.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)


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
    q = sub.add_parser("queries")
    q.add_argument("--repeat", type=int, default=20)
    q.set_defaults(func=queries)
    d = sub.add_parser("dag-run")
    d.add_argument("--events", type=int, default=100_000)
    d.set_defaults(func=dag_run)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
