"""The speed layer: two streaming queries over the Kafka topic of events, each reading and parsing it once.

* ``views``  parse → valid → watermark → dedupe on event_id → ``views.aggregate`` (update mode) → ``foreachBatch``:
             ``hbase_store.view_mutations(rows, batch_id)`` → HBase speed table. Stateful, small bounded batches,
             frequent triggers: this is what freshness depends on.
* ``ingest`` parse → ``foreachBatch``: the valid events (late ones included) to the Parquet master dataset through
             ``archive.write_batch`` (exactly once: a batch id is committed once), and the refused records to the
             dead-letter topic with the reason, the original payload and the source coordinates
             (topic:partition:offset, also the record key — the idempotency key, since a replayed micro-batch can
             publish a dead letter twice). Stateless, larger batches, a slower trigger.

Each query has its own checkpoint. The archive lives in epochs (``epoch=0001``, …): batch ids restart with new
checkpoints, so a start over lost checkpoints must never write into an existing epoch; ``speed.checkpoints``
decides where a start begins and when it is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from twinlayer.model.config import Settings
from twinlayer.model.views import View, aggregate
from twinlayer.runtime import faults
from twinlayer.speed import QUERIES, WARMUP_PREFIX  # noqa: F401 — QUERIES re-exported for the entry point
from twinlayer.speed.dead_letters import DeadLetterSender, envelope
from twinlayer.speed.parse import (
    EVENT_COLUMNS,
    SOURCE_COLUMNS,
    parse_events,
    valid_events,
)
from twinlayer.speed.warmup import warm_up, warmup_topic
from twinlayer.storage import archive
from twinlayer.storage import hbase as hbase_store

log = logging.getLogger(__name__)


# The state of the views query (dedupe and aggregation) in RocksDB, checkpointed as a changelog instead of a full
# snapshot per micro-batch; fair scheduling between the two queries.
SESSION_CONF = {
    # the views query and the ingest query share the cores in their own pools, so a long ingest batch does not
    # hold the views back until all of its tasks are done
    "spark.scheduler.mode": "FAIR",
    "spark.scheduler.allocation.file": str(Path(__file__).with_name("fairscheduler.xml")),
    # the ingest query writes an hour's records and the refused ones from one task without sorting them first
    "spark.sql.maxConcurrentOutputFileWriters": "8",
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    "spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows": "false",
    # the views' HLL sketches aggregate in an object hash map that would fall back to sorting every row past 128
    # groups per task; a micro-batch has a few thousand groups (views x keys x windows): 1M events went 27k -> 32k/s
    "spark.sql.objectHashAggregate.sortBased.fallbackThreshold": "1000000",
    # a micro-batch allocates short-lived rows by the million: the throughput collector's pauses cost less CPU than
    # G1's concurrent work on two shared cores (freshness p99 at 10k/s 4.0 -> 3.5 s, at 25k/s 18.6 -> 7.7 s)
    "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
}


@dataclasses.dataclass(frozen=True)
class SpeedOptions:
    topic: str
    dlq_topic: str
    table: str
    archive_dir: Path
    checkpoint_dir: Path
    watermark: str = "10 seconds"
    views_trigger: str = "500 milliseconds"
    ingest_trigger: str = "10 seconds"
    quiet_window_seconds: float = 10.0
    # A backlog (a start, a catch-up) is taken in bounded micro-batches: on two cores a stateful micro-batch costs
    # about a second whatever its size, so the bound trades a few seconds per batch for the rate of a catch-up.
    # Live traffic makes far smaller batches (one trigger's worth).
    max_offsets_per_trigger: int | None = 200_000
    ingest_max_offsets_per_trigger: int = 1_000_000
    table_max_versions: int = 1
    table_ttl_seconds: int | None = None
    reset_checkpoints: bool = False
    warm_up: bool = True  # run both queries' plans once over generated events before starting (see ``warmup``)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> SpeedOptions:
        base: dict[str, Any] = {
            "topic": settings.events_topic,
            "dlq_topic": settings.dlq_topic,
            "table": settings.speed_table,
            "archive_dir": settings.archive_dir,
            "checkpoint_dir": settings.checkpoint_dir,
            "watermark": settings.watermark,
            "table_ttl_seconds": settings.speed_ttl_seconds,
        }
        base.update(overrides)
        return cls(**base)


# --- queries ----------------------------------------------------------------------------------------------------


def kafka_stream(
    spark: SparkSession, bootstrap: str, topic: str, starting_offsets: str, max_offsets_per_trigger: int | None = None
) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", starting_offsets)
        .option("failOnDataLoss", "true")
        # a task reads a closed range of offsets; the fetch its consumer sends ahead at the end of that range
        # would otherwise hold the next micro-batch's first fetch for up to 500 ms (≈80 ms each measured)
        .option("kafka.fetch.max.wait.ms", "10")
    )
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return reader.load()


def views_sink(pool, options: SpeedOptions, views: tuple[View, ...], metrics=None, write_from_ms: int = 0):
    """The views query's sink; a rebuild's leaves out the windows that start before ``write_from_ms`` (it read
    only part of their events)."""
    writer = hbase_store.ViewWriter(pool, options.table, on_attempt=metrics.hbase_attempt if metrics else None)

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        rows = batch.collect()
        if write_from_ms:
            rows = [row for row in rows if row["window_start_ms"] >= write_from_ms]
        mutations = hbase_store.view_mutations(rows, batch_id, views)
        writer.write(mutations)
        faults.point(faults.VIEWS_WRITTEN)
        if metrics:
            metrics.views_written(mutations)

    return write_batch


def ingest_sink(bootstrap: str, options: SpeedOptions, epoch: Path, metrics=None):
    """One micro-batch of parsed records, in one Spark job: the valid ones into the archive (exactly once per batch
    id), the refused ones set aside and sent to the dead-letter topic before the batch commits (at least once)."""
    sender = DeadLetterSender(bootstrap, options.dlq_topic)

    def send_refused(table) -> None:
        import pyarrow as pa

        millis = table.column("kafka_timestamp").cast(pa.timestamp("ms")).cast(pa.int64())  # UTC, naive or not
        raw = table.column("payload").cast(pa.binary())  # as Kafka held it: the bytes need not be UTF-8
        rows = (
            table.select(["error", "kafka_partition", "kafka_offset"])
            .append_column("payload", raw)
            .append_column("kafka_timestamp_ms", millis)
            .to_pylist()
        )
        sender.send(
            envelope(
                options.topic,
                r["error"],
                r["payload"],
                r["kafka_partition"],
                r["kafka_offset"],
                r["kafka_timestamp_ms"],
            )
            for r in rows
        )
        if metrics:
            metrics.dead_letters(Counter(r["error"] for r in rows))

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        if not archive.committed(epoch, batch_id):  # a replayed batch is skipped at once
            time.sleep(away_from_window_ends(time.time(), options.quiet_window_seconds))
        archive.write_batch(_archived(batch), epoch, batch_id, set_aside=_refused(), on_set_aside=send_refused)

    return write_batch


ON_SCHEDULE_SECONDS = 2.0  # a trigger's batch reaches its sink this long after the window's end, at most


def away_from_window_ends(now: float, window_seconds: float) -> float:
    """Seconds to wait, for work that starts just after a window's end, until the window's middle; none otherwise.

    Spark fires a processing-time trigger on multiples of its interval, which are the views' window ends: the
    ingest query's batch (a core for seconds) would otherwise run beside exactly the views batch that completes a
    window, and that batch's time is the freshness of every window. A batch that starts anywhere else (a catch-up,
    whose batches follow each other) goes at once."""
    phase = now % window_seconds
    return window_seconds / 2 - phase if phase < ON_SCHEDULE_SECONDS else 0.0


def _refused():
    return F.col("error").isNotNull()


def _archived(batch: DataFrame) -> DataFrame:
    """What the ingest query hands the archive: the events, and the reason and payload of the refused records."""
    return batch.select(*EVENT_COLUMNS, *SOURCE_COLUMNS, "error", F.when(_refused(), F.col("payload")).alias("payload"))


def views_frame(parsed: DataFrame, options: SpeedOptions, views: tuple[View, ...]) -> DataFrame:
    deduped = (
        valid_events(parsed).withWatermark("event_time", options.watermark).dropDuplicatesWithinWatermark(["event_id"])
    )
    return aggregate(deduped, views)


def _collect(batch: DataFrame, _batch_id: int) -> None:
    batch.collect()


def warm_up_queries(
    spark: SparkSession, settings: Settings, options: SpeedOptions, mapping: DataFrame, views: tuple[View, ...]
) -> None:
    """Both queries' transformations once over generated events, into scratch sinks (see ``warmup``)."""

    def start(offsets: str, scratch: Path) -> list[StreamingQuery]:
        parsed = parse_events(
            kafka_stream(spark, settings.kafka_bootstrap, warmup_topic(options.topic), offsets), mapping
        )
        epoch = archive.open_epoch(scratch / "archive", 1)

        def scratch_archive(batch: DataFrame, batch_id: int) -> None:
            archive.write_batch(_archived(batch), epoch, batch_id, set_aside=_refused())

        return [
            views_frame(parsed, options, views)
            .writeStream.queryName(f"{WARMUP_PREFIX}views")
            .outputMode("update")
            .foreachBatch(_collect)
            .option("checkpointLocation", str(scratch / "views"))
            .trigger(availableNow=True)
            .start(),
            parsed.writeStream.queryName(f"{WARMUP_PREFIX}ingest")
            .foreachBatch(scratch_archive)
            .option("checkpointLocation", str(scratch / "ingest"))
            .trigger(availableNow=True)
            .start(),
        ]

    warm_up(settings.kafka_bootstrap, options.topic, settings.events_partitions, start)
