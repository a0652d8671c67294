"""Speed-layer benchmarks on the running embedded stack (`make up` first). Prints figures; asserts nothing.

    python benchmarks/speed_layer.py throughput [--events 2000000]
        Preloads a fresh topic, then measures in one run: Spark's Kafka→noop ceiling (read only), Kafka→parse→noop,
        and the real speed layer (all three queries) draining the same records. Reports events/s and ratios.

    python benchmarks/speed_layer.py freshness [--rate 25000] [--seconds 120]
        Sends events at a fixed rate to a live speed layer and, for every (campaign, 10 s window), measures how long
        after the window's end its final count is visible in HBase. Reports p50/p90/p99.

    python benchmarks/speed_layer.py generator [--events 500000]
        The generator's top rate with each Kafka client.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests
from twinlayer.localstack.generator import (
    EventFactory,
    LibrdkafkaSender,
    Workload,
    paced,
    produce,
)
from twinlayer.model import events as ev
from twinlayer.model.config import PROJECT_ROOT, load_settings
from twinlayer.storage.hbase import connection_pool, parse_row_key
from twinlayer.storage.kafka import ensure_topics

SETTINGS = load_settings()


def _metric(port: int, name: str, query: str) -> float:
    body = requests.get(f"http://{SETTINGS.host}:{port}/metrics", timeout=2).text
    match = re.search(rf'^{name}{{query="{query}"}} (\S+)$', body, re.M)
    return float(match.group(1)) if match else 0.0


def _start_speed_layer(topic: str, root: Path, port: int, extra: list[str] = ()) -> subprocess.Popen:
    log = open(root / "speed-layer.log", "wb")
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "spark_jobs" / "speed_layer.py"), "--topic", topic,
         "--dlq-topic", f"{topic}-dlq", "--table", topic.replace("-", "_"), "--archive-dir", str(root / "archive"),
         "--checkpoint-dir", str(root / "checkpoints"), "--metrics-port", str(port), *extra],
        stdout=log, stderr=subprocess.STDOUT)


def _wait_active(port: int, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("speed layer exited early; see its log")
        try:
            if all(_metric(port, "twinlayer_speed_query_active", q) == 1 for q in ("views", "archive", "dead_letters")):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit("speed layer did not start")


def _spark_drain_rate(topic: str, events: int, parse: bool) -> float:
    from twinlayer.runtime.spark import build_session
    from twinlayer.speed.parse import campaign_mapping, parse_events
    from twinlayer.speed.stream import kafka_stream

    spark = build_session("benchmark-ceiling", SETTINGS)
    spark.sparkContext.setLogLevel("ERROR")
    frame = kafka_stream(spark, SETTINGS.kafka_bootstrap, topic, "earliest")
    if parse:
        frame = parse_events(frame, campaign_mapping(spark))
    with tempfile.TemporaryDirectory() as checkpoint:
        started = time.perf_counter()
        query = (frame.writeStream.format("noop").option("checkpointLocation", checkpoint)
                 .trigger(availableNow=True).start())
        query.awaitTermination()
        seconds = time.perf_counter() - started
    spark.stop()
    return events / seconds


def throughput(args) -> None:
    topic = f"bench-throughput-{int(time.time())}"
    ensure_topics(SETTINGS.kafka_bootstrap, {topic: SETTINGS.events_partitions})
    loaded = produce(SETTINGS.kafka_bootstrap, topic, Workload(rate=0, count=args.events, seed=5))
    print(f"preloaded {loaded['sent']} events at {loaded['events_per_second']:.0f}/s")
    ceiling = _spark_drain_rate(topic, args.events, parse=False)
    print(f"Spark Kafka->noop ceiling            {ceiling:12,.0f} events/s")
    parsed = _spark_drain_rate(topic, args.events, parse=True)
    print(f"Spark Kafka->parse->noop             {parsed:12,.0f} events/s")

    root = Path(tempfile.mkdtemp(prefix="twinlayer-bench-"))
    port = 9188
    process = _start_speed_layer(topic, root, port)
    try:
        _wait_active(port, process)
        started = time.perf_counter()
        done: dict[str, float] = {}
        while len(done) < 3:
            for query in ("views", "archive", "dead_letters"):
                if query not in done and _metric(port, "twinlayer_speed_input_rows_total", query) >= args.events:
                    done[query] = time.perf_counter() - started
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(60)
        shutil.rmtree(root, ignore_errors=True)
    slowest = max(done.values())
    speed = args.events / slowest
    for query, seconds in sorted(done.items(), key=lambda kv: kv[1]):
        print(f"speed layer: {query:<13} drained in {seconds:6.1f}s")
    print(f"speed layer, all three queries       {speed:12,.0f} events/s")
    print(f"ratio speed layer / Kafka->noop      {speed / ceiling:12.2f}")


def freshness(args) -> None:
    topic = f"bench-freshness-{int(time.time())}"
    ensure_topics(SETTINGS.kafka_bootstrap, {topic: SETTINGS.events_partitions})
    table = topic.replace("-", "_")
    root = Path(tempfile.mkdtemp(prefix="twinlayer-bench-"))
    port = 9189
    process = _start_speed_layer(topic, root, port)
    sent: dict[tuple[str, int], int] = defaultdict(int)
    visible: dict[tuple[str, int], float] = {}
    stop = threading.Event()
    ads = ev.ad_campaigns()
    view_marker = b'"event_type":"view"'
    ad_re, time_re = re.compile(rb'"ad_id":"([^"]+)"'), re.compile(rb'"event_time":(\d+)')

    def send() -> None:
        sender = LibrdkafkaSender(SETTINGS.kafka_bootstrap)
        workload = Workload(rate=args.rate, duration=args.seconds, seed=9)
        for payload in paced(workload, EventFactory(workload)):
            sender.send(topic, payload)
            if view_marker in payload:
                start = int(time_re.search(payload).group(1)) // 10_000 * 10_000
                sent[(ads[ad_re.search(payload).group(1).decode()], start)] += 1
        sender.close()

    def poll() -> None:
        pool = connection_pool(SETTINGS.host, SETTINGS.thrift_port, size=1)
        while not stop.is_set():
            now = time.time()
            with pool.connection() as conn:
                table_ = conn.table(table)
                for bucket in range(16):
                    prefix = f"{bucket:02x}|campaign_views_10s|".encode()
                    for row, data in table_.scan(row_start=prefix, row_stop=prefix[:-1] + b"}", columns=[b"m:views"]):
                        _, key, start = parse_row_key(row)
                        cell = (key, start)
                        if cell not in visible and start + 10_000 <= now * 1000 and sent.get(cell) == int(data[b"m:views"]):
                            visible[cell] = now
            time.sleep(0.05)

    try:
        _wait_active(port, process)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        send()
        time.sleep(15)
        stop.set()
        poller.join(10)
        batches = _metric(port, "twinlayer_speed_batch_duration_seconds_count", "views")
        busy = _metric(port, "twinlayer_speed_batch_duration_seconds_sum", "views")
        print(f"views query: {batches:.0f} micro-batches, {busy / max(batches, 1):.2f}s each on average")
    finally:
        process.terminate()
        process.wait(60)
        shutil.rmtree(root, ignore_errors=True)
    window_ends = {start + 10_000 for _, start in sent}
    complete = [cell for cell in sent if cell[1] + 10_000 <= max(window_ends) - 10_000 and cell[1] > min(window_ends)]
    delays = sorted(visible[c] - (c[1] + 10_000) / 1000 for c in complete if c in visible)
    missing = sum(1 for c in complete if c not in visible)
    q = statistics.quantiles(delays, n=100) if len(delays) > 2 else [float("nan")] * 99
    print(f"rate {args.rate:,.0f} events/s for {args.seconds:.0f}s: {len(delays)} (campaign, window) cells measured, "
          f"{missing} never matched the sent count")
    print(f"freshness (window end -> final count visible in HBase): p50 {q[49]:.2f}s  p90 {q[89]:.2f}s  "
          f"p99 {q[98]:.2f}s  max {delays[-1] if delays else float('nan'):.2f}s")


def generator(args) -> None:
    topic = f"bench-generator-{int(time.time())}"
    ensure_topics(SETTINGS.kafka_bootstrap, {topic: SETTINGS.events_partitions})
    for client in ("librdkafka", "kafka-python"):
        count = args.events if client == "librdkafka" else args.events // 5
        result = produce(SETTINGS.kafka_bootstrap, topic, Workload(rate=0, count=count), client=client)
        print(f"generator with {client:<12} {result['events_per_second']:12,.0f} events/s ({count} events)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--events", type=int, default=2_000_000)
    t.set_defaults(func=throughput)
    f = sub.add_parser("freshness")
    f.add_argument("--rate", type=float, default=25_000)
    f.add_argument("--seconds", type=float, default=120)
    f.set_defaults(func=freshness)
    g = sub.add_parser("generator")
    g.add_argument("--events", type=int, default=500_000)
    g.set_defaults(func=generator)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
