"""`make demo`: the embedded stack up, generated events through the speed layer, live views printed."""

from __future__ import annotations

import threading
import time

from twinlayer.stack import Stack


def run(stack: Stack, seconds: float = 45.0, rate: float = 2000.0) -> int:
    from twinlayer import hbase_store
    from twinlayer.events import campaign_ids
    from twinlayer.generator import Workload, produce
    from twinlayer.views import by_name

    settings = stack.settings
    print("== bringing the stack up (Kafka, HBase, Spark speed layer, Prometheus, Alertmanager, Airflow)")
    stack.up()

    workload = Workload(rate=rate, duration=seconds, late_fraction=0.01, duplicate_fraction=0.01,
                        malformed_fraction=0.01, seed=int(time.time()))
    print(f"== sending {rate:.0f} events/s for {seconds:.0f}s to Kafka topic {settings.events_topic!r} "
          "(1% late, 1% duplicated, 1% malformed)")
    result: dict = {}
    sender = threading.Thread(target=lambda: result.update(
        produce(settings.kafka_bootstrap, settings.events_topic, workload)), daemon=True)
    sender.start()

    pool = hbase_store.connection_pool(settings.host, settings.thrift_port, size=1)
    views = by_name()
    campaign = campaign_ids()[0]
    started = time.time()
    while sender.is_alive() or time.time() - started < seconds + 5:
        time.sleep(5)
        now_ms = int(time.time() * 1000)
        ysb = hbase_store.read_view(pool, settings.speed_table, views["campaign_views_10s"], campaign,
                                    now_ms - 40_000, now_ms)
        activity = hbase_store.read_view(pool, settings.speed_table, views["campaign_activity_1m"],
                                         f"{campaign}|click", now_ms - 120_000, now_ms)
        line = "  ".join(f"{time.strftime('%H:%M:%S', time.gmtime(w.window_start_ms / 1000))}={w.measures['views']}"
                         for w in ysb)
        clicks = "  ".join(f"{time.strftime('%H:%M', time.gmtime(w.window_start_ms / 1000))}: "
                           f"{w.measures['events']} clicks by ~{round(hbase_store.sketch_estimate(w.measures['users']))} users"
                           for w in activity)
        print(f"[{time.strftime('%H:%M:%S')}] views/10s of campaign {campaign[:8]}…: {line or '(none yet)'}")
        print(f"{'':11}clicks/min: {clicks or '(none yet)'}")
    sender.join()
    print(f"== sent {result.get('sent')} events ({result.get('events_per_second')} events/s)")
    print(f"   read any view: twinlayer query campaign_views_10s --key {campaign} --from 5m")
    print_urls(stack)
    return 0


def print_urls(stack: Stack) -> None:
    s = stack.settings
    print("== where to look")
    print(f"   Airflow UI            {s.url('airflow_port')}/")
    print(f"   Prometheus            {s.url('prometheus_port')}/   (try twinlayer_speed_input_rows_total)")
    print(f"   Alertmanager          {s.url('alertmanager_port')}/")
    print(f"   Pushgateway           {s.url('pushgateway_port')}/")
    print(f"   speed-layer metrics   {s.url('speed_metrics_port')}/metrics")
    print(f"   Kafka                 {s.kafka_bootstrap}  (topics {s.events_topic}, {s.dlq_topic})")
    print(f"   HBase Thrift          {s.host}:{s.thrift_port}  (table {s.speed_table})")
    print(f"   archive               {s.archive_dir}")
    print(f"   logs                  {s.logs_dir}/   (make logs)")
    print("   stop with             make down")
