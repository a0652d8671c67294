"""`make demo`: the embedded stack up, generated events through the speed layer, live views printed, an hour
recomputed by Airflow with its tasks shown as they run, and a summary: the merged answer, where to look, how to stop.
Output goes through Rich (a live task table on a terminal, plain lines in a log)."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from twinlayer.localstack.services import airflow_login
from twinlayer.localstack.stack import Stack

console = Console(highlight=False)
STATE_STYLES = {"success": "green", "failed": "red", "upstream_failed": "red", "skipped": "dim"}


def say(line: str, style: str | None = None) -> None:
    console.print(line, style=style, markup=False, soft_wrap=True)


def step(line: str) -> None:
    say(line, "bold cyan")


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
    step("== bringing the stack up (Kafka, HBase, Spark speed layer, Prometheus, Alertmanager, Airflow)")
    stack.up()

    workload = Workload(
        rate=rate,
        duration=seconds,
        late_fraction=0.01,
        duplicate_fraction=0.01,
        malformed_fraction=0.01,
        seed=int(time.time()),
    )
    step(
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
        say(f"[{time.strftime('%H:%M:%S')}] views/10s of campaign {campaign[:8]}…: {line or '(none yet)'}")
        say(f"{'':11}clicks/min: {clicks or '(none yet)'}")
    sender.join()
    step(f"== sent {result.get('sent')} events ({result.get('events_per_second')} events/s)")


def lambda_flow(stack: Stack, count: int = 3000) -> None:
    """Events of an hour two hours ago (late for the speed layer, archived), recomputed and published by the
    recompute DAG in Airflow, then one merged answer: batch before the boundary, speed after it."""
    from twinlayer.localstack.airflow_api import AirflowClient
    from twinlayer.localstack.generator import Workload, produce
    from twinlayer.model.events import campaign_ids
    from twinlayer.model.hours import HOUR_MS, floor_hour, hour_label
    from twinlayer.model.views import by_name
    from twinlayer.serving.merge import Server
    from twinlayer.storage import archive

    settings = stack.settings
    client = AirflowClient.for_stack(settings, timeout=30)
    hour = floor_hour(int(time.time() * 1000)) - 2 * HOUR_MS
    while client.has_run("twinlayer_recompute", hour):  # an earlier demo's hour: Airflow keeps one run per hour
        hour -= HOUR_MS
    step(
        f"== the batch layer: {count} events of hour {hour_label(hour)} (too late for the speed layer's views; "
        "archived all the same)"
    )
    before = archive.hour_counts(settings.archive_dir).get(hour_label(hour), 0)
    ticks = iter(range(count))
    produce(
        settings.kafka_bootstrap,
        settings.events_topic,
        Workload(rate=0, count=count, seed=int(time.time())),
        clock=lambda: hour + next(ticks) * (HOUR_MS - 1000) // count,
    )
    deadline = time.monotonic() + 120
    with console.status("waiting for the speed layer to archive them"):
        # the hour's own count in the archive's commit records: the live phase's last events may still be arriving
        while archive.hour_counts(settings.archive_dir).get(hour_label(hour), 0) < before + count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the speed layer did not archive {count} events of {hour_label(hour)} in 120 s")
            time.sleep(1)
    step(f"== Airflow runs twinlayer_recompute for {hour_label(hour)}: GX gates, Spark batch job, publish, drift")
    with Live(task_table({}), console=console, refresh_per_second=2) as live:
        result = client.run_interval(
            "twinlayer_recompute",
            hour,
            hour + HOUR_MS,
            f"demo_{hour_label(hour)}_{int(time.time())}",
            on_progress=lambda tasks: live.update(task_table(tasks)),
        )
    if not console.is_terminal:
        console.line()  # a Live display printed to a log ends without one
    say(
        f"   run {result['state']} in {result['seconds']:.0f}s: "
        + ", ".join(f"{task}={state}" for task, state in result["tasks"].items()),
        STATE_STYLES.get(result["state"]),
    )
    campaign = campaign_ids()[0]
    answer = Server(settings).query(by_name()["campaign_views_10s"], campaign, hour, int(time.time() * 1000))
    boundary = time.strftime("%Y-%m-%d %H:%M", time.gmtime(answer.boundary_ms / 1000)) if answer.boundary_ms else "none"
    batch_windows = [w for w in answer.windows if w["source"] == "batch"]
    speed_windows = [w for w in answer.windows if w["source"] == "speed"]
    step(f"== merged answer for campaign {campaign[:8]}… since {hour_label(hour)}:00 — boundary {boundary} UTC")
    merged = Table("window start (UTC)", "from", "views", header_style="bold")
    for label, windows in (("batch", batch_windows[:3] + batch_windows[-2:]), ("speed", speed_windows[-4:])):
        for w in windows:
            version = f" v{w['version']}" if w["version"] else ""
            origin = Text(f"{label}{version}", style="green" if label == "batch" else "yellow")
            merged.add_row(time.strftime("%H:%M:%S", time.gmtime(w["window_start_ms"] / 1000)), origin, str(w["views"]))
    console.print(merged)
    say(f"   ({len(batch_windows)} windows from the batch layer, {len(speed_windows)} from the speed layer)")
    say(
        f"   the same through HTTP: curl '{settings.url('serving_port')}/views/campaign_views_10s"
        f"?key={campaign}&from=3h'"
    )


def task_table(tasks: dict[str, str | None]) -> Table:
    """The recompute run's tasks and their states, as Airflow reports them."""
    grid = Table("task", "state", title="twinlayer_recompute", title_justify="left", header_style="bold")
    for task, state in tasks.items():
        grid.add_row(task, Text(state or "waiting", style=STATE_STYLES.get(state or "", "yellow")))
    return grid


def print_urls(stack: Stack) -> None:
    s = stack.settings
    airflow_user, airflow_password = airflow_login(s)
    step("== where to look")
    places = Table(show_header=False, box=None, padding=(0, 3))
    for name, where in (
        ("Airflow UI", f"{s.url('airflow_port')}/   (login {airflow_user} / {airflow_password})"),
        ("Prometheus", f"{s.url('prometheus_port')}/   (try twinlayer_speed_input_rows_total)"),
        ("Alertmanager", f"{s.url('alertmanager_port')}/"),
        ("Pushgateway", f"{s.url('pushgateway_port')}/"),
        ("serving API", f"{s.url('serving_port')}/docs"),
        ("speed-layer metrics", f"{s.url('speed_metrics_port')}/metrics"),
        ("Kafka", f"{s.kafka_bootstrap}  (topics {s.events_topic}, {s.dlq_topic}; twinlayer dlq tail)"),
        ("HBase Thrift", f"{s.address('thrift_port')}  (table {s.speed_table}; twinlayer keys campaign_views_10s)"),
        ("archive", str(s.archive_dir)),
        ("logs", f"{s.logs_dir}/   (make logs)"),
        ("stop with", "make down"),
    ):
        places.add_row(Text(name, style="bold"), Text(where))
    console.print(places)
