"""The running speed layer: its two queries started, a views rebuild started when one is due, stopped together.

``stream`` defines what each query computes and writes; this module decides where each starts (``checkpoints``
for the archive epoch, ``rebuild`` for the views) and restarts the views query when a rebuild is asked for.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from twinlayer.model.config import Settings
from twinlayer.model.views import VIEWS, View
from twinlayer.speed import rebuild
from twinlayer.speed.checkpoints import plan_start
from twinlayer.speed.parse import campaign_mapping, parse_events
from twinlayer.speed.stream import SpeedOptions, ingest_sink, kafka_stream, views_frame, views_sink, warm_up_queries
from twinlayer.storage import archive
from twinlayer.storage import hbase as hbase_store
from twinlayer.storage.kafka import end_offsets, offsets_at

log = logging.getLogger(__name__)


class SpeedLayer:
    """The two running queries. The views query can be started again from other offsets: a rebuild (``rebuild``)."""

    def __init__(
        self, spark: SparkSession, settings: Settings, options: SpeedOptions, views: tuple[View, ...], metrics
    ):
        self.spark, self.settings, self.options, self.views, self.metrics = spark, settings, options, views, metrics
        self.pool = hbase_store.pool_for(settings)
        self.mapping = campaign_mapping(spark).cache()
        self.views_checkpoint = rebuild.views_checkpoint(options.checkpoint_dir, views)
        self.queries: list[StreamingQuery] = []

    def _parsed(self, starting: str, max_offsets: int | None) -> DataFrame:
        source = kafka_stream(self.spark, self.settings.kafka_bootstrap, self.options.topic, starting, max_offsets)
        return parse_events(source, self.mapping)

    def _start(self, name: str, start) -> None:
        self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", name)
        try:
            self.queries = [q for q in self.queries if q.name != name] + [start()]
        finally:
            self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)  # type: ignore[arg-type]

    def start_views(self, starting: str, write_from_ms: int = 0) -> None:
        frame = views_frame(self._parsed(starting, self.options.max_offsets_per_trigger), self.options, self.views)
        sink = views_sink(self.pool, self.options, self.views, self.metrics, write_from_ms)
        self._start(
            "views",
            lambda: (
                frame.writeStream.queryName("views")
                .outputMode("update")
                .foreachBatch(sink)
                .option("checkpointLocation", str(self.views_checkpoint))
                .trigger(processingTime=self.options.views_trigger)
                .start()
            ),
        )

    def start_ingest(self, starting: str, epoch: Path) -> None:
        frame = self._parsed(starting, self.options.ingest_max_offsets_per_trigger)
        self._start(
            "ingest",
            lambda: (
                frame.writeStream.queryName("ingest")
                .foreachBatch(ingest_sink(self.settings.kafka_bootstrap, self.options, epoch, self.metrics))
                .option("checkpointLocation", str(self.options.checkpoint_dir / "ingest"))
                .trigger(processingTime=self.options.ingest_trigger)
                .start()
            ),
        )

    def rebuild_views(self, status: rebuild.Status) -> None:
        """(Re)start the views query with an empty checkpoint for the windows from ``status.since_ms`` on."""
        bootstrap, topic = self.settings.kafka_bootstrap, self.options.topic
        status.since_ms = rebuild.aligned(status.since_ms, self.views)
        starting = offsets_at(bootstrap, topic, rebuild.read_from_ms(status.since_ms))
        status.starting = {str(p): o for p, o in starting.items()}
        status.target = {str(p): o for p, o in end_offsets(bootstrap, topic).items()}
        for query in self.queries:
            if query.name == "views":
                query.stop()
        if self.views_checkpoint.exists():
            shutil.rmtree(self.views_checkpoint)
        status.state, status.started_ms = "running", int(time.time() * 1000)
        rebuild.write_status(self.options.checkpoint_dir, status)
        log.warning(
            "views rebuild (%s) from %s: %d records to read", status.reason, status.since_ms, status.records_total
        )
        self.start_views(json.dumps({topic: status.starting}), write_from_ms=status.since_ms)

    def tick(self) -> None:
        """Start a requested rebuild; note a running one's progress. A rebuild that cannot start while the views
        query runs on is marked failed, with the reason, for whoever waits for it."""
        status = rebuild.read_status(self.options.checkpoint_dir)
        try:
            if status is not None and status.state == "requested":
                self.rebuild_views(status)
            elif status is not None and status.state == "running":
                rebuild.update_progress(self.options.checkpoint_dir, self.views_checkpoint, self.options.topic)
        except Exception as exc:
            if status is None or not any(q.name == "views" and q.isActive for q in self.queries):
                raise
            log.exception("views rebuild: %s", exc)
            status.state, status.reason = "failed", f"{type(exc).__name__}: {exc}"
            rebuild.write_status(self.options.checkpoint_dir, status)

    def stop(self) -> None:
        for query in self.queries:
            query.stop()


def start_speed_layer(
    spark: SparkSession, settings: Settings, options: SpeedOptions, metrics=None, views: tuple[View, ...] = VIEWS
) -> SpeedLayer:
    """Start the two queries; the caller ticks (``SpeedLayer.tick``), awaits and stops them."""
    from twinlayer.batch.publish import published

    layer = SpeedLayer(spark, settings, options, views, metrics)
    hbase_store.ensure_table(layer.pool, options.table, options.table_max_versions, options.table_ttl_seconds)
    plan = plan_start(
        spark,
        options.checkpoint_dir,
        options.archive_dir,
        options.topic,
        options.reset_checkpoints,
        settings.kafka_bootstrap,
    )
    if options.warm_up:
        warm_up_queries(spark, settings, options, layer.mapping, views)
    # decided after the warm-up, so a rebuild asked for meanwhile is seen
    retired = rebuild.retire_other_checkpoints(options.checkpoint_dir, layer.views_checkpoint)
    status = rebuild.read_status(options.checkpoint_dir)
    if status is not None and status.state not in ("requested", "running"):
        status = None  # a rebuild that finished (or failed) before this start
    if plan.archived and not layer.views_checkpoint.exists():
        now_ms = int(time.time() * 1000)
        since = rebuild.automatic_since(
            archive.hour_counts(options.archive_dir), published(layer.pool, settings), now_ms
        )
        reason = "the views' definitions changed" if retired else "the views checkpoint is missing"
        if status is None:
            status = rebuild.Status("requested", since, reason, now_ms)
        elif since < status.since_ms:
            status.since_ms, status.reason = since, f"{reason}, and {status.reason}"
    try:
        if status is None:
            layer.start_views(plan.views_starting)
        else:
            layer.rebuild_views(status)
        layer.start_ingest(plan.ingest_starting, plan.epoch)
    except Exception:
        layer.stop()
        raise
    return layer
