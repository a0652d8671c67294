"""`make demo`: the embedded stack up, generated events through the speed layer, live views printed."""

from __future__ import annotations

import threading
import time

from twinlayer.localstack.stack import Stack


def run(stack: Stack, seconds: float = 30.0, rate: float = 2000.0) -> int:
    live_speed_views(stack, seconds, rate)
    lambda_flow(stack)
    print_urls(stack)
    return 0


def live_speed_views(stack: Stack, seconds: float, rate: float) -> None:
    from twinlayer.localstack.generator import Workload, produce
    from twinlayer.model.events import campaign_ids
    from twinlayer.model.views import by_name
    from twinlayer.storage import hbase as hbase_store

    settings = stack.settings
    print("== bringing the stack up (Kafka, HBase, Spark speed layer, Prometheus, Alertmanager, Airflow)")
    stack.up()

    workload = Workload(
        rate=rate,
        duration=seconds,
        late_fraction=0.01,
        duplicate_fraction=0.01,
        malformed_fraction=0.01,
        seed=int(time.time()),
    )
    print(
        f"== sending {rate:.0f} events/s for {seconds:.0f}s to Kafka topic {settings.events_topic!r} "
        "(1% late, 1% duplicated, 1% malformed)"
    )
    result: dict = {}
    sender = threading.Thread(
        target=lambda: result.update(produce(settings.kafka_bootstrap, settings.events_topic, workload)), daemon=True
    )
    sender.start()

    pool = hbase_store.pool_for(settings, size=1)
    views = by_name()
    campaign = campaign_ids()[0]
    started = time.time()
    while sender.is_alive() or time.time() - started < seconds + 5:
        time.sleep(5)
        now_ms = int(time.time() * 1000)
        ysb = hbase_store.read_view(
            pool, settings.speed_table, views["campaign_views_10s"], campaign, now_ms - 40_000, now_ms
        )
        activity = hbase_store.read_view(
            pool, settings.speed_table, views["campaign_activity_1m"], f"{campaign}|click", now_ms - 120_000, now_ms
        )
        line = "  ".join(
            f"{time.strftime('%H:%M:%S', time.gmtime(w.window_start_ms / 1000))}={w.measures['views']}" for w in ysb
        )
        clicks = "  ".join(
            f"{time.strftime('%H:%M', time.gmtime(w.window_start_ms / 1000))}: "
            f"{w.measures['events']} clicks by ~{round(hbase_store.sketch_estimate(w.measures['users']))} users"
            for w in activity
        )
        print(f"[{time.strftime('%H:%M:%S')}] views/10s of campaign {campaign[:8]}…: {line or '(none yet)'}")
        print(f"{'':11}clicks/min: {clicks or '(none yet)'}")
    sender.join()
    print(f"== sent {result.get('sent')} events ({result.get('events_per_second')} events/s)")


def _archived(settings) -> float:
    import re

    import requests

    body = requests.get(f"{settings.url('speed_metrics_port')}/metrics", timeout=5).text
    match = re.search(r'^twinlayer_speed_input_rows_total\{query="ingest"\} (\S+)$', body, re.M)
    return float(match.group(1)) if match else 0.0


def lambda_flow(stack: Stack, count: int = 3000) -> None:
    """Events of an hour two hours ago (late for the speed layer, archived), recomputed and published by the
    recompute DAG in Airflow, then one merged answer: batch before the boundary, speed after it."""
    from twinlayer.localstack.airflow_api import AirflowClient
    from twinlayer.localstack.generator import Workload, produce
    from twinlayer.model.events import campaign_ids
    from twinlayer.model.hours import HOUR_MS, floor_hour, hour_label
    from twinlayer.model.views import by_name
    from twinlayer.serving.merge import Server

    settings = stack.settings
    client = AirflowClient(settings.url("airflow_port"), timeout=30)
    hour = floor_hour(int(time.time() * 1000)) - 2 * HOUR_MS
    while client.has_run("twinlayer_recompute", hour):  # an earlier demo's hour: Airflow keeps one run per hour
        hour -= HOUR_MS
    print(
        f"== the batch layer: {count} events of hour {hour_label(hour)} (too late for the speed layer's views; "
        "archived all the same)"
    )
    before = _archived(settings)
    ticks = iter(range(count))
    produce(
        settings.kafka_bootstrap,
        settings.events_topic,
        Workload(rate=0, count=count, seed=int(time.time())),
        clock=lambda: hour + next(ticks) * (HOUR_MS - 1000) // count,
    )
    deadline = time.monotonic() + 120
    while _archived(settings) < before + count and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(1)  # the ingest query commits the archive before it reports progress
    print(f"== Airflow runs twinlayer_recompute for {hour_label(hour)}: GX gates, Spark batch job, publish, drift")
    result = client.run_interval(
        "twinlayer_recompute", hour, hour + HOUR_MS, f"demo_{hour_label(hour)}_{int(time.time())}"
    )
    print(
        f"   run {result['state']} in {result['seconds']:.0f}s: "
        + ", ".join(f"{task}={state}" for task, state in result["tasks"].items())
    )
    campaign = campaign_ids()[0]
    answer = Server(settings).query(by_name()["campaign_views_10s"], campaign, hour, int(time.time() * 1000))
    boundary = time.strftime("%Y-%m-%d %H:%M", time.gmtime(answer.boundary_ms / 1000)) if answer.boundary_ms else "none"
    batch_windows = [w for w in answer.windows if w["source"] == "batch"]
    speed_windows = [w for w in answer.windows if w["source"] == "speed"]
    print(f"== merged answer for campaign {campaign[:8]}… since {hour_label(hour)}:00 — boundary {boundary} UTC")
    for label, windows in (("batch", batch_windows[:3] + batch_windows[-2:]), ("speed", speed_windows[-4:])):
        for w in windows:
            version = f" v{w['version']}" if w["version"] else ""
            print(
                f"   {time.strftime('%H:%M:%S', time.gmtime(w['window_start_ms'] / 1000))}  [{label}{version}]  "
                f"views={w['views']}"
            )
    print(f"   ({len(batch_windows)} windows from the batch layer, {len(speed_windows)} from the speed layer)")
    print(
        f"   the same through HTTP: curl '{settings.url('serving_port')}/views/campaign_views_10s"
        f"?key={campaign}&from=3h'"
    )


def print_urls(stack: Stack) -> None:
    s = stack.settings
    print("== where to look")
    print(f"   Airflow UI            {s.url('airflow_port')}/")
    print(f"   Prometheus            {s.url('prometheus_port')}/   (try twinlayer_speed_input_rows_total)")
    print(f"   Alertmanager          {s.url('alertmanager_port')}/")
    print(f"   Pushgateway           {s.url('pushgateway_port')}/")
    print(f"   speed-layer metrics   {s.url('speed_metrics_port')}/metrics")
    print(f"   Kafka                 {s.kafka_bootstrap}  (topics {s.events_topic}, {s.dlq_topic})")
    print(f"   HBase Thrift          {s.address('thrift_port')}  (table {s.speed_table})")
    print(f"   archive               {s.archive_dir}")
    print(f"   logs                  {s.logs_dir}/   (make logs)")
    print("   stop with             make down")
