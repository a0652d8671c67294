"""Prometheus metrics of the speed layer, fed by Spark's query progress events and by the sinks.

Served by prometheus-client on their own port (``speed_metrics_port``) from the driver process, and scraped by the
stack's Prometheus as job ``speed-layer``.
"""

from __future__ import annotations

import json
import logging
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from pyspark.sql.streaming import StreamingQueryListener

from twinlayer.speed import WARMUP_PREFIX

PREFIX = "twinlayer_speed_"
VIEWS_QUERY = "views"
log = logging.getLogger(__name__)


class SpeedMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.input_rate = Gauge(
            PREFIX + "input_rows_per_second", "Rows/s read from Kafka in the last micro-batch", ["query"], registry=r
        )
        self.processed_rate = Gauge(
            PREFIX + "processed_rows_per_second", "Rows/s processed in the last micro-batch", ["query"], registry=r
        )
        self.input_rows = Counter(PREFIX + "input_rows", "Rows read from Kafka", ["query"], registry=r)
        self.batch_duration = Histogram(
            PREFIX + "batch_duration_seconds",
            "Micro-batch duration",
            ["query"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.last_progress = Gauge(
            PREFIX + "last_progress_timestamp_seconds", "When the query last reported progress", ["query"], registry=r
        )
        self.batch_id = Gauge(PREFIX + "batch_id", "Last micro-batch id", ["query"], registry=r)
        self.watermark = Gauge(PREFIX + "watermark_timestamp_seconds", "Event-time watermark", ["query"], registry=r)
        self.watermark_delay = Gauge(
            PREFIX + "watermark_delay_seconds", "Wall clock minus the event-time watermark", ["query"], registry=r
        )
        self.kafka_lag = Gauge(
            PREFIX + "kafka_lag_records",
            "Records in Kafka not yet processed (latest minus end offset)",
            ["query", "topic", "partition"],
            registry=r,
        )
        # RocksDB does not count its rows (a read before every write would): what the state holds shows as memory
        self.state_memory = Gauge(
            PREFIX + "state_memory_bytes", "Memory the state stores use (RocksDB's estimate)", ["query"], registry=r
        )
        self.late_dropped = Counter(
            PREFIX + "late_events_dropped",
            "Rows dropped by stateful operators for being behind the watermark",
            ["query"],
            registry=r,
        )
        self.active = Gauge(PREFIX + "query_active", "1 while the query runs", ["query"], registry=r)
        self.ready = Gauge(
            PREFIX + "query_ready",
            "1 once the query has run a micro-batch or found Kafka drained (it is warm and caught up once)",
            ["query"],
            registry=r,
        )
        self.hbase_latency = Histogram(
            PREFIX + "hbase_write_seconds",
            "One attempt to write a micro-batch to HBase",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.hbase_errors = Counter(PREFIX + "hbase_write_errors", "Failed attempts to write to HBase", registry=r)
        self.cells_written = Counter(PREFIX + "view_rows_written", "View rows written to HBase", ["view"], registry=r)
        self.max_window_end = Gauge(
            PREFIX + "max_window_end_timestamp_seconds", "End of the newest window written to HBase", registry=r
        )
        self.freshness = Histogram(
            PREFIX + "freshness_seconds",
            "From a window's end to the end of the micro-batch whose newest event passed it "
            "(the window's events up to then are in HBase)",
            buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120),
            registry=r,
        )
        self.dlq = Counter(PREFIX + "dead_letters", "Records sent to the dead-letter topic", ["reason"], registry=r)
        self._newest_window_end = 0.0
        self._frontier_ms: int | None = None

    # sinks ------------------------------------------------------------------------------------------------------
    def hbase_attempt(self, seconds: float, error: BaseException | None) -> None:
        self.hbase_latency.observe(seconds)
        if error is not None:
            self.hbase_errors.inc()

    def views_written(self, mutations) -> None:
        from twinlayer.model.views import by_stored_name
        from twinlayer.storage.hbase import parse_row_key

        catalog = by_stored_name()
        newest = 0
        for mutation in mutations:
            stored, _, start = parse_row_key(mutation.row)
            view = catalog.get(stored)
            self.cells_written.labels(view.name if view else stored).inc()
            if view:
                newest = max(newest, start + view.window_ms)
        if newest / 1000 > self._newest_window_end:
            self._newest_window_end = newest / 1000
            self.max_window_end.set(self._newest_window_end)

    def observe_freshness(self, max_event_time: str | None, now: float | None = None) -> None:
        """After a micro-batch of the views query: every window end that its newest event time passed holds, in
        HBase, every in-order event up to that end (the batch wrote before reporting progress); each end counts
        once, with its age. The first batch after a start only sets the frontier."""
        from twinlayer.model.views import VIEWS

        if not max_event_time:
            return
        frontier = int(_iso_seconds(max_event_time) * 1000)
        previous, self._frontier_ms = self._frontier_ms, max(frontier, self._frontier_ms or 0)
        if previous is None or frontier <= previous:
            return
        now = time.time() if now is None else now
        for window_ms in sorted({view.window_ms for view in VIEWS}):
            end = (previous // window_ms + 1) * window_ms
            while end <= frontier:
                self.freshness.observe(max(now - end / 1000, 0))
                end += window_ms

    def dead_letters(self, counts: dict[str, int]) -> None:
        for reason, count in counts.items():
            self.dlq.labels(reason).inc(count)

    # progress ---------------------------------------------------------------------------------------------------
    def record_progress(self, p: dict) -> None:
        """``p`` is a progress report: Spark's JSON of a StreamingQueryProgress, as a dict."""
        query = p.get("name") or "unnamed"
        self.last_progress.labels(query).set(time.time())
        self.ready.labels(query).set(1)
        self.batch_id.labels(query).set(p.get("batchId", 0))
        self.input_rows.labels(query).inc(p.get("numInputRows", 0))
        self.input_rate.labels(query).set(p.get("inputRowsPerSecond") or 0)
        self.processed_rate.labels(query).set(p.get("processedRowsPerSecond") or 0)
        total_ms = (p.get("durationMs") or {}).get("triggerExecution")
        if total_ms is not None and p.get("numInputRows", 0) > 0:
            self.batch_duration.labels(query).observe(total_ms / 1000)
        if query == VIEWS_QUERY:
            self.observe_freshness((p.get("eventTime") or {}).get("max"))
        watermark = (p.get("eventTime") or {}).get("watermark")
        if watermark:
            seconds = _iso_seconds(watermark)
            if seconds > 0:
                self.watermark.labels(query).set(seconds)
                self.watermark_delay.labels(query).set(max(time.time() - seconds, 0))
        operators = p.get("stateOperators") or []
        if operators:
            self.state_memory.labels(query).set(sum(op.get("memoryUsedBytes", 0) for op in operators))
            self.late_dropped.labels(query).inc(sum(op.get("numRowsDroppedByWatermark", 0) for op in operators))
        for source in p.get("sources") or []:
            end, latest = _offsets(source.get("endOffset")), _offsets(source.get("latestOffset"))
            for (topic, partition), latest_offset in latest.items():
                if (topic, partition) in end:
                    self.kafka_lag.labels(query, topic, partition).set(max(latest_offset - end[(topic, partition)], 0))


def _offsets(raw) -> dict[tuple[str, str], int]:
    if not raw:
        return {}
    data = json.loads(raw) if isinstance(raw, str) else raw
    return {(topic, str(p)): int(o) for topic, parts in data.items() for p, o in parts.items()}


def _iso_seconds(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class _JsonEvents:
    """The JVM's side of ``ProgressListener``: each event handed over as the JSON Spark writes for it, in one Py4J
    call. PySpark's own wrapper reads every field of a progress event through a Py4J call of its own, some of them
    class lookups by name: 4 % of the driver JVM's CPU at 10k events/s."""

    def __init__(self, listener: ProgressListener) -> None:
        self.listener = listener

    def onQueryStarted(self, jevent) -> None:
        self.listener.onQueryStarted(json.loads(jevent.json()))

    def onQueryProgress(self, jevent) -> None:
        self.listener.onQueryProgress(json.loads(jevent.progress().json()))

    def onQueryIdle(self, jevent) -> None:
        self.listener.onQueryIdle(json.loads(jevent.json()))

    def onQueryTerminated(self, jevent) -> None:
        self.listener.onQueryTerminated(json.loads(jevent.json()))

    class Java:
        implements = ("org.apache.spark.sql.streaming.PythonStreamingQueryListener",)


class ProgressListener(StreamingQueryListener):
    """Query events → metrics and one log line per micro-batch with rows. Each event is the dict of Spark's JSON for
    it (``id``, ``name``, … for a start; a progress report for a progress event)."""

    def __init__(self, metrics: SpeedMetrics) -> None:
        self.metrics = metrics
        self.names: dict[str, str] = {}

    @property
    def _jlistener(self):
        from pyspark import SparkContext

        if not hasattr(self, "_jlistenerobj"):
            assert SparkContext._jvm is not None, "no running SparkContext"
            self._jlistenerobj = SparkContext._jvm.PythonStreamingQueryListenerWrapper(_JsonEvents(self))
        return self._jlistenerobj

    def onQueryStarted(self, event: dict) -> None:  # type: ignore[override]
        name = self.names[event["id"]] = event.get("name") or "unnamed"
        if name.startswith(WARMUP_PREFIX):  # the warm-up's queries are no part of the running layer
            return
        self.metrics.active.labels(name).set(1)
        self.metrics.last_progress.labels(name).set(time.time())  # a new query gets the same grace as a live one

    def onQueryProgress(self, progress: dict) -> None:  # type: ignore[override]
        if (progress.get("name") or "").startswith(WARMUP_PREFIX):
            return
        self.metrics.record_progress(progress)
        if progress.get("numInputRows"):
            keys = ("numRowsUpdated", "allUpdatesTimeMs", "allRemovalsTimeMs", "commitTimeMs")
            state = [{key: op.get(key) for key in keys} for op in progress.get("stateOperators") or []]
            log.info(
                "%s batch %s: %s rows, durations %s, state %s",
                progress.get("name"),
                progress.get("batchId"),
                progress.get("numInputRows"),
                progress.get("durationMs"),
                state,
            )

    def onQueryIdle(self, event: dict) -> None:  # type: ignore[override]
        name = self.names.get(event["id"], "unnamed")
        if name.startswith(WARMUP_PREFIX):
            return
        self.metrics.last_progress.labels(name).set(time.time())
        self.metrics.ready.labels(name).set(1)

    def onQueryTerminated(self, event: dict) -> None:  # type: ignore[override]
        name = self.names.get(event["id"], "unnamed")
        if not name.startswith(WARMUP_PREFIX):
            self.metrics.active.labels(name).set(0)


def serve(metrics: SpeedMetrics, host: str, port: int):
    """The metrics endpoint, with the process's own (its start time tells Prometheus about restarts)."""
    ProcessCollector(registry=metrics.registry)
    return start_http_server(port, addr=host, registry=metrics.registry)
