"""The speed layer: three streaming queries over the Kafka topic of events.

* ``views``        parse → valid → watermark → dedupe on event_id → ``views.aggregate`` (update mode) →
                   ``foreachBatch``: ``hbase_store.view_mutations(rows, batch_id)`` → HBase speed table.
* ``archive``      parse → valid (late ones included) → Parquet master dataset partitioned by event hour, through
                   Spark's file sink (exactly once: only files its commit log lists are part of the dataset).
* ``dead_letters`` parse → refused → the dead-letter topic, with the reason, the original payload and the source
                   coordinates (topic:partition:offset, also the record key — the idempotency key, since a
                   replayed micro-batch can publish a dead letter twice).

Each query has its own checkpoint. The archive lives in epochs (``epoch=0001``, …): a query that lost its
checkpoint must never write into the file sink's existing commit log (it would silently skip "already committed"
batches), so starting without checkpoints over an existing archive is refused unless a reset is asked for, and a
reset opens a new epoch starting right after the last archived Kafka offsets.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from twinlayer.model.config import Settings
from twinlayer.model.views import VIEWS, View, aggregate
from twinlayer.speed import QUERIES  # noqa: F401 — re-exported for the entry point
from twinlayer.speed.parse import (
    campaign_mapping,
    dead_letters,
    parse_events,
    valid_events,
)
from twinlayer.storage import archive
from twinlayer.storage import hbase as hbase_store

log = logging.getLogger(__name__)


class CheckpointMissing(RuntimeError):
    """The archive exists but the speed layer's checkpoints do not: refusing to guess where to restart."""


@dataclasses.dataclass(frozen=True)
class SpeedOptions:
    topic: str
    dlq_topic: str
    table: str
    archive_dir: Path
    checkpoint_dir: Path
    watermark: str = "30 seconds"
    views_trigger: str = "0 seconds"
    archive_trigger: str = "10 seconds"
    dlq_trigger: str = "10 seconds"
    max_offsets_per_trigger: int | None = None
    table_max_versions: int = 1
    table_ttl_seconds: int | None = None
    reset_checkpoints: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> SpeedOptions:
        base = dict(topic=settings.events_topic, dlq_topic=settings.dlq_topic, table=settings.speed_table,
                    archive_dir=settings.archive_dir, checkpoint_dir=settings.checkpoint_dir,
                    watermark=settings.watermark, table_ttl_seconds=settings.speed_ttl_seconds)
        base.update(overrides)
        return cls(**base)


# --- start plan ---------------------------------------------------------------------------------------------------


def _plan_start(spark: SparkSession, options: SpeedOptions) -> tuple[Path, str]:
    """(archive epoch folder, Kafka starting offsets) for this start; raises CheckpointMissing when unsafe."""
    marker = options.checkpoint_dir / "archive_epoch"
    if marker.exists():
        return Path(marker.read_text().strip()), "earliest"
    epochs = archive.epochs(options.archive_dir)
    if epochs and not options.reset_checkpoints:
        raise CheckpointMissing(
            f"the archive {options.archive_dir} has data but the checkpoints in {options.checkpoint_dir} are gone. "
            "Restore them, or start with --reset-checkpoints to open a new archive epoch that continues after the "
            "last archived Kafka offsets (speed views of the windows open at that moment will be partial until the "
            "batch layer recomputes them).")
    if options.checkpoint_dir.exists():
        shutil.rmtree(options.checkpoint_dir)
    options.checkpoint_dir.mkdir(parents=True)
    starting = "earliest"
    if epochs:
        last = archive.last_offsets(spark, options.archive_dir)
        starting = json.dumps({options.topic: {str(p): o + 1 for p, o in last.items()}}) if last else "earliest"
        log.warning("reset: new archive epoch, Kafka offsets start at %s", starting)
    epoch = archive.epoch_path(options.archive_dir, len(epochs) + 1)
    epoch.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(epoch))
    return epoch, starting


# --- queries ----------------------------------------------------------------------------------------------------


def kafka_stream(spark: SparkSession, bootstrap: str, topic: str, starting_offsets: str,
                 max_offsets_per_trigger: int | None = None) -> DataFrame:
    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", bootstrap)
              .option("subscribe", topic)
              .option("startingOffsets", starting_offsets)
              .option("failOnDataLoss", "true"))
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return reader.load()


def views_sink(pool, options: SpeedOptions, views: tuple[View, ...], metrics=None):
    writer = hbase_store.ViewWriter(pool, options.table, on_attempt=metrics.hbase_attempt if metrics else None)

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        mutations = hbase_store.view_mutations(batch.collect(), batch_id, views)
        writer.write(mutations)
        if metrics:
            metrics.views_written(mutations)

    return write_batch


def dead_letter_sink(bootstrap: str, options: SpeedOptions, metrics=None):
    def write_batch(batch: DataFrame, batch_id: int) -> None:
        batch = batch.persist()
        try:
            counts = {r.error: r["count"] for r in batch.groupBy("error").count().collect()}
            if not counts:
                return
            coordinates = F.format_string("%s:%d:%d", F.lit(options.topic), "kafka_partition", "kafka_offset")
            (batch.select(
                coordinates.alias("key"),
                F.to_json(F.struct(F.col("error").alias("reason"), "payload", F.lit(options.topic).alias("topic"),
                                   F.col("kafka_partition").alias("partition"), F.col("kafka_offset").alias("offset"),
                                   F.unix_millis("kafka_timestamp").alias("kafka_timestamp_ms"))).alias("value"))
             .write.format("kafka")
             .option("kafka.bootstrap.servers", bootstrap)
             .option("topic", options.dlq_topic)
             .save())
            if metrics:
                metrics.dead_letters(counts)
        finally:
            batch.unpersist()

    return write_batch


def start_speed_layer(spark: SparkSession, settings: Settings, options: SpeedOptions, metrics=None,
                      views: tuple[View, ...] = VIEWS) -> list[StreamingQuery]:
    """Start the three queries; the caller awaits and stops them."""
    pool = hbase_store.pool_for(settings)
    hbase_store.ensure_table(pool, options.table, options.table_max_versions, options.table_ttl_seconds)
    epoch, starting = _plan_start(spark, options)
    mapping = campaign_mapping(spark).cache()
    bootstrap = settings.kafka_bootstrap

    def parsed() -> DataFrame:
        return parse_events(kafka_stream(spark, bootstrap, options.topic, starting,
                                         options.max_offsets_per_trigger), mapping)

    cp = options.checkpoint_dir
    queries = []
    try:
        deduped = (valid_events(parsed()).withWatermark("event_time", options.watermark)
                   .dropDuplicatesWithinWatermark(["event_id"]))
        queries.append(
            aggregate(deduped, views).writeStream.queryName("views").outputMode("update")
            .foreachBatch(views_sink(pool, options, views, metrics))
            .option("checkpointLocation", str(cp / "views"))
            .trigger(processingTime=options.views_trigger).start())
        queries.append(
            archive.with_event_hour(valid_events(parsed())).writeStream.queryName("archive").format("parquet")
            .partitionBy(archive.HOUR_COLUMN).option("path", str(epoch))
            .option("checkpointLocation", str(cp / "archive"))
            .trigger(processingTime=options.archive_trigger).start())
        queries.append(
            dead_letters(parsed()).writeStream.queryName("dead_letters")
            .foreachBatch(dead_letter_sink(bootstrap, options, metrics))
            .option("checkpointLocation", str(cp / "dead_letters"))
            .trigger(processingTime=options.dlq_trigger).start())
    except Exception:
        for query in queries:
            query.stop()
        raise
    return queries
