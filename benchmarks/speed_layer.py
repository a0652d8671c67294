"""Speed-layer figures, measured on the running embedded stack's own speed layer (`make up` first; `make bench` runs
`all`). Prints each figure and appends it as a JSON line to state/bench/speed.jsonl; asserts nothing.

    python benchmarks/speed_layer.py all
    python benchmarks/speed_layer.py throughput [--events 2000000]
        The stack's speed layer is stopped, the events are preloaded into its topic, Spark's Kafka->noop and
        Kafka->parse->noop drain them (the ceiling), then the speed layer is started and drains them (both queries).
    python benchmarks/speed_layer.py freshness [--rate 25000] [--seconds 120]
        Events at a fixed rate; for every (campaign, 10 s window) of a sample of campaigns, how long after the
        window's end its final count is visible through the serving API.
    python benchmarks/speed_layer.py cold-start
        The speed layer restarted as `make up` starts it: from the moment its probe passes (when `make up` returns)
        to the first window of new events visible through the serving API.
    python benchmarks/speed_layer.py idle-cpu [--idle-seconds 60]
        CPU of every process of the stack over a quiet minute, in cores.
    python benchmarks/speed_layer.py generator [--events 500000]
        The load generator's top rate with each Kafka client.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections import defaultdict

import requests

from twinlayer.localstack.generator import (
    EventFactory,
    LibrdkafkaSender,
    Workload,
    paced,
    produce,
)
from twinlayer.localstack.stack import Stack
from twinlayer.model import events as ev
from twinlayer.model.config import PROJECT_ROOT, load_settings
from twinlayer.ops.probes import check_speed_layer
from twinlayer.speed import QUERIES
from twinlayer.storage.kafka import end_offsets, ensure_topics

SETTINGS = load_settings()
RESULTS = SETTINGS.state_dir / "bench" / "speed.jsonl"
VIEW, WINDOW_MS = "campaign_views_10s", 10_000  # the view the freshness figures follow
COMMIT = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=PROJECT_ROOT
).stdout.strip()


def record(metric: str, value: float, unit: str, **extra) -> None:
    line = {
        "bench": "speed",
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "commit": COMMIT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(line) + "\n")
    print(f"{metric:<44} {value:>14,.3f} {unit}  {json.dumps(extra) if extra else ''}", flush=True)


def wait(predicate, timeout: float, what: str, poll: float = 0.2) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.monotonic()
        except (requests.RequestException, OSError, RuntimeError):
            pass
        time.sleep(poll)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def healthy_stack(timeout: float = 240) -> Stack:
    """The running stack, once every service answers (a service just restarted gets ``timeout`` to come back)."""
    stack = Stack(SETTINGS, out=lambda line: None)
    if not stack.supervisor_running():
        raise SystemExit("the embedded stack is not running: run `make up` first")
    deadline = time.monotonic() + timeout
    while not stack.healthy():
        if time.monotonic() > deadline:
            down = ", ".join(f"{name} ({why})" for name, state, why in stack.status() if state != "up")
            raise SystemExit(f"the embedded stack is not healthy: {down}")
        time.sleep(2)
    return stack


def read_and_lag(query: str) -> tuple[float, float]:
    """(rows ``query`` has read, records of the events topic it has not yet read), both as its last micro-batch
    saw them: one scrape, so the two belong to the same micro-batch."""
    body = requests.get(f"{SETTINGS.url('speed_metrics_port')}/metrics", timeout=5).text
    rows = re.search(rf'^twinlayer_speed_input_rows_total{{query="{query}"}} (\S+)$', body, re.M)
    pattern = rf'^twinlayer_speed_kafka_lag_records{{[^}}]*query="{query}"[^}}]*}} (\S+)$'
    lags = [float(v) for v in re.findall(pattern, body, re.M)]
    return (float(rows.group(1)) if rows else 0.0), (sum(lags) if lags else float("nan"))


def spark_drain_rate(starting: dict[int, int], events: int, parse: bool) -> float:
    from twinlayer.runtime.spark import build_session
    from twinlayer.speed.parse import campaign_mapping, parse_events
    from twinlayer.speed.stream import SESSION_CONF, kafka_stream

    # the same JVM as the speed layer's (its garbage collector), so the ratio compares the pipelines alone
    spark = build_session(
        "benchmark-ceiling",
        SETTINGS,
        {key: value for key, value in SESSION_CONF.items() if key.startswith("spark.driver.")},
    )
    spark.sparkContext.setLogLevel("ERROR")
    offsets = json.dumps({SETTINGS.events_topic: {str(p): o for p, o in starting.items()}})
    frame = kafka_stream(spark, SETTINGS.kafka_bootstrap, SETTINGS.events_topic, offsets)
    if parse:
        frame = parse_events(frame, campaign_mapping(spark))
    try:
        with tempfile.TemporaryDirectory() as checkpoint:
            started = time.perf_counter()
            (
                frame.writeStream.format("noop")
                .option("checkpointLocation", checkpoint)
                .trigger(availableNow=True)
                .start()
                .awaitTermination()
            )
            return events / (time.perf_counter() - started)
    finally:
        spark.stop()


def throughput(args) -> None:
    stack = healthy_stack()
    stack.stop("speed-layer")
    try:
        starting = end_offsets(SETTINGS.kafka_bootstrap, SETTINGS.events_topic)
        loaded = produce(SETTINGS.kafka_bootstrap, SETTINGS.events_topic, Workload(rate=0, count=args.events, seed=5))
        print(f"preloaded {loaded['sent']:,} events at {loaded['events_per_second']:,.0f}/s", flush=True)
        ceiling = spark_drain_rate(starting, args.events, parse=False)
        record("kafka_to_noop_events_per_second", ceiling, "events/s")
        record("kafka_parse_noop_events_per_second", spark_drain_rate(starting, args.events, parse=True), "events/s")
    finally:
        stack.start("speed-layer")
    wait(lambda: check_speed_layer(SETTINGS) is None, 240, "the speed layer's queries")
    # each query's clock starts at its first micro-batch boundary after its probe passed: what it had read by then
    # (first batches may hold part of the backlog, and what an earlier run left) is not counted, nor is a batch
    # counted without all of its time. A query that had drained the backlog by then kept ahead of the others, and
    # the layer's rate is the rate of those still draining. "Drained" leaves a few records of slack: probes of the
    # stack write to the topic too.
    slack = args.events // 100
    at_probe = {query: read_and_lag(query)[0] for query in QUERIES}
    clock: dict[str, tuple[float, float]] = {}
    ahead: set[str] = set()

    def boundary() -> bool:
        for query in QUERIES:
            rows, lag = read_and_lag(query)
            if query in clock or query in ahead:
                continue
            if lag <= slack:
                ahead.add(query)
            elif rows != at_probe[query]:
                clock[query] = (rows, time.monotonic())
        return len(clock) + len(ahead) == len(QUERIES)

    wait(boundary, 600, "a micro-batch boundary of each query", poll=0.05)
    done: dict[str, tuple[float, float]] = {}

    def drained() -> bool:
        for query, (counted, started) in clock.items():
            rows, lag = read_and_lag(query)
            if query not in done and lag <= slack:
                done[query] = (rows - counted, time.monotonic() - started)
        return len(done) == len(clock)

    wait(drained, 1800, "the speed layer to drain the preloaded events")
    ahead |= {query for query, (rows, _) in done.items() if rows <= 0}  # its boundary was its last batch
    done = {query: value for query, value in done.items() if query not in ahead}
    if not done:
        raise SystemExit("every query drained the backlog before a rate could be measured: use more --events")
    for query in sorted(ahead):
        print(f"{query}: drained the backlog before its rate could be measured, ahead of {', '.join(done)}")
    rates = {query: rows / seconds for query, (rows, seconds) in done.items()}
    for query, rate in rates.items():
        record(
            f"speed_{query}_query_events_per_second",
            rate,
            "events/s",
            rows=round(done[query][0]),
            note="drained while the other query ran on the same cores",
        )
    rate = min(rates.values())
    record("speed_layer_events_per_second", rate, "events/s", target=100_000, events=args.events)
    record("speed_layer_ratio_to_kafka_noop", rate / ceiling, "ratio", target=0.7, floor=0.3)


class ServingPoller:
    """Polls the serving API for the windows of a few campaigns and notes when each reaches an expected count."""

    def __init__(self, campaigns: list[str], since_ms: int) -> None:
        self.campaigns, self.since_ms = campaigns, since_ms
        self.visible: dict[tuple[str, int], float] = {}
        self.expected: dict[tuple[str, int], int] = defaultdict(int)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        url = f"{SETTINGS.url('serving_port')}/views/{VIEW}"
        while not self.stop.is_set():
            for campaign in self.campaigns:
                now = time.time()
                try:
                    windows = session.get(url, params={"key": campaign, "from": self.since_ms}, timeout=5).json()
                except (requests.RequestException, ValueError):
                    continue
                for w in windows.get("windows", []):
                    cell = (campaign, w["window_start_ms"])
                    if (
                        cell not in self.visible
                        and w["window_end_ms"] <= now * 1000
                        and w.get("views") == self.expected.get(cell)
                    ):
                        self.visible[cell] = now
            time.sleep(0.2)


def freshness_at(rate: float, seconds: float, sample: int = 5) -> None:
    ads = ev.ad_campaigns()
    campaigns = sorted(set(ads.values()))[:sample]
    chosen = set(campaigns)
    poller = ServingPoller(campaigns, int(time.time() * 1000))
    view_marker, ad_re, time_re = (
        b'"event_type":"view"',
        re.compile(rb'"ad_id":"([^"]+)"'),
        re.compile(rb'"event_time":(\d+)'),
    )
    poller.thread.start()
    sender = LibrdkafkaSender(SETTINGS.kafka_bootstrap)
    workload = Workload(rate=rate, duration=seconds, seed=int(time.time()))
    sent = 0
    started = time.monotonic()
    for payload in paced(workload, EventFactory(workload)):
        sender.send(SETTINGS.events_topic, payload)
        sent += 1
        if view_marker in payload:
            campaign = ads[ad_re.search(payload).group(1).decode()]
            if campaign in chosen:
                start = int(time_re.search(payload).group(1)) // WINDOW_MS * WINDOW_MS
                poller.expected[(campaign, start)] += 1
    sender.close()
    achieved = sent / (time.monotonic() - started)
    time.sleep(15)
    poller.stop.set()
    poller.thread.join(10)
    starts = sorted({start for _, start in poller.expected})
    complete = [c for c in poller.expected if starts[0] < c[1] < starts[-1]]  # whole windows only
    delays = sorted(poller.visible[c] - (c[1] + WINDOW_MS) / 1000 for c in complete if c in poller.visible)
    missing = len(complete) - len(delays)
    if len(delays) < 3:
        raise SystemExit(f"freshness at {rate:,.0f}/s: only {len(delays)} windows became visible ({missing} never)")
    q = statistics.quantiles(delays, n=100)
    common = {"rate": rate, "achieved_rate": round(achieved), "windows": len(delays), "never_visible": missing}
    record(f"freshness_p50_seconds_at_{rate / 1000:.0f}k", q[49], "s", **common, target=1.0)
    record(f"freshness_p90_seconds_at_{rate / 1000:.0f}k", q[89], "s", **common)
    record(
        f"freshness_p99_seconds_at_{rate / 1000:.0f}k",
        q[98],
        "s",
        **common,
        target=2.0,
        **({"floor": 3.0} if rate == 10_000 else {}),
    )


def freshness(args) -> None:
    healthy_stack()
    for rate in args.rates:
        freshness_at(rate, args.seconds)


def cold_start(args) -> None:
    stack = healthy_stack()
    stack.stop("speed-layer")
    stack.start("speed-layer")
    up = wait(lambda: check_speed_layer(SETTINGS) is None, 240, "the speed layer's probe")
    # from the start of the window open when the probe passed: the first new events land in it, not in the next
    since_ms = int(time.time() * 1000) // WINDOW_MS * WINDOW_MS
    campaign = sorted(set(ev.ad_campaigns().values()))[0]
    url = f"{SETTINGS.url('serving_port')}/views/{VIEW}"

    def counts() -> dict[int, int]:
        windows = requests.get(url, params={"key": campaign, "from": since_ms}, timeout=5).json()["windows"]
        return {w["window_start_ms"]: w.get("views") or 0 for w in windows}

    before = counts()  # what that window held before anything was sent (normally nothing)
    stop = threading.Event()

    def send() -> None:
        seed = 0
        while not stop.is_set():
            seed += 1
            produce(SETTINGS.kafka_bootstrap, SETTINGS.events_topic, Workload(rate=5000, duration=0.5, seed=seed))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        visible = wait(
            lambda: any(n > before.get(start, 0) for start, n in counts().items()),
            120,
            "the first window of new events",
            poll=0.1,
        )
    finally:
        stop.set()
        sender.join(10)
    record(
        "cold_start_seconds",
        visible - up,
        "s",
        target=5.0,
        floor=10.0,
        note="speed layer's probe passed (make up returns) -> first window of new events through serving",
    )


def idle_cpu(args) -> None:
    import psutil

    stack = healthy_stack()
    pids = {name: info["pid"] for name, info in stack.process_info().items() if info["pid"]}

    def cpu_seconds() -> dict[str, float]:
        totals = {}
        for name, pid in pids.items():
            try:
                process = psutil.Process(pid)
                tree = [process, *process.children(recursive=True)]
                totals[name] = sum(sum(p.cpu_times()[:4]) for p in tree)
            except psutil.NoSuchProcess:
                totals[name] = 0.0
        return totals

    before = cpu_seconds()
    time.sleep(args.idle_seconds)
    after = cpu_seconds()
    cores = {name: (after[name] - before.get(name, 0.0)) / args.idle_seconds for name in after}
    record(
        "idle_stack_cpu_cores",
        sum(cores.values()),
        "cores",
        target=0.3,
        seconds=args.idle_seconds,
        by_service={k: round(v, 3) for k, v in sorted(cores.items(), key=lambda kv: -kv[1])},
    )


def generator(args) -> None:
    topic = f"bench-generator-{int(time.time())}"
    ensure_topics(SETTINGS.kafka_bootstrap, {topic: SETTINGS.events_partitions})
    for client in ("librdkafka", "kafka-python"):
        count = args.events if client == "librdkafka" else args.events // 5
        result = produce(SETTINGS.kafka_bootstrap, topic, Workload(rate=0, count=count), client=client)
        record(f"generator_{client}_events_per_second", result["events_per_second"], "events/s")


def run_all(args) -> None:
    idle_cpu(args)
    cold_start(args)
    freshness(args)
    throughput(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["all", "throughput", "freshness", "cold-start", "idle-cpu", "generator"])
    parser.add_argument("--events", type=int, default=2_000_000, help="throughput: events preloaded")
    parser.add_argument("--rates", type=float, nargs="+", default=[10_000, 25_000], help="freshness: events/s")
    parser.add_argument("--seconds", type=float, default=120, help="freshness: seconds per rate")
    parser.add_argument("--idle-seconds", type=float, default=60, help="idle-cpu: seconds measured")
    args = parser.parse_args()
    commands = {
        "all": run_all,
        "throughput": throughput,
        "freshness": freshness,
        "cold-start": cold_start,
        "idle-cpu": idle_cpu,
        "generator": generator,
    }
    commands[args.command](args)


if __name__ == "__main__":
    main()
