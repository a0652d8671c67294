"""The master dataset: every valid event once, immutable Parquet partitioned by event hour, in epochs.

This module is the archive's one home: its schema (from the event model), how the hour partition is spelled, how
a micro-batch is written, which files are part of the dataset, how Spark reads it, how many records each hour
holds and whether every committed file is on disk.

Commits. The speed layer's ingest query writes each micro-batch with ``write_batch``: its files first (named after
the batch id), then one commit record ``_commits/<batch id>.json`` that lists them with their hour and row count,
written atomically. Only files a commit lists are part of the dataset: a file a crashed micro-batch left behind is
not, and a replayed batch whose commit exists is skipped — so every record is archived exactly once even though
Spark may run a micro-batch twice. The commit records also answer "how many records does each hour hold" without
a JVM, equal to what the batch layer's Spark read counts (the hour's version; a test holds them together), and how
far in Kafka the archive has got (``ingest_position``: when an hour may be recomputed).

Epochs (``epoch=0001``, …). An epoch is one life of the speed layer's checkpoints: batch ids restart at 0 with new
checkpoints, so a speed layer that lost its checkpoints opens a new epoch instead of writing into one whose
commits it no longer knows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinlayer.model import events as ev
from twinlayer.model.hours import SPARK_HOUR_LABEL_FORMAT

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

HOUR_COLUMN = "event_hour"
ARCHIVE_COLUMNS: dict[str, str] = {**ev.EVENT_COLUMNS, **ev.SOURCE_COLUMNS, HOUR_COLUMN: "string"}
# Readers pass it explicitly: an epoch whose commit log lists no file yet still reads as an empty table.
ARCHIVE_SCHEMA = ", ".join(f"{name} {sql_type}" for name, sql_type in ARCHIVE_COLUMNS.items())
COMMITS = "_commits"
STAGING = "_staging"
SET_ASIDE = "_set_aside"  # the staging partition of records a batch does not archive
WRITERS = 1  # Spark tasks writing one micro-batch: one file per hour and batch, and a core left to the views
ORPHAN_AFTER_S = 600
# Columns whose values are (nearly) all distinct: Parquet's dictionary encoding would fill a page, give up and fall
# back to plain for them in every file, and that attempt was a third of the archive write's CPU.
PLAIN_ENCODED = ("event_id", "ip_address", "kafka_offset", "payload")


def epochs(archive_dir: Path) -> list[Path]:
    """The epoch folders of the archive (each with its commit folder), oldest first."""
    if not archive_dir.is_dir():
        return []
    return sorted(p for p in archive_dir.glob("epoch=*") if (p / COMMITS).is_dir())


def epoch_path(archive_dir: Path, number: int) -> Path:
    return archive_dir / f"epoch={number:04d}"


def open_epoch(archive_dir: Path, number: int) -> Path:
    epoch = epoch_path(archive_dir, number)
    (epoch / COMMITS).mkdir(parents=True, exist_ok=True)
    return epoch


def _commit_path(epoch: Path, batch_id: int) -> Path:
    return epoch / COMMITS / f"{batch_id:012d}.json"


def committed(epoch: Path, batch_id: int) -> bool:
    """Whether micro-batch ``batch_id`` of ``epoch`` is in the archive (its commit record exists)."""
    return _commit_path(epoch, batch_id).exists()


def last_batch_id(epoch: Path) -> int | None:
    """The newest micro-batch the epoch has committed, None when it has none."""
    return max((int(p.stem) for p in (epoch / COMMITS).glob("*.json")), default=None)


def commits(epoch: Path) -> list[dict[str, Any]]:
    """The commit records of an epoch, in batch order."""
    return [json.loads(p.read_text()) for p in sorted((epoch / COMMITS).glob("*.json"))]


def write_batch(
    records: DataFrame,
    epoch: Path,
    batch_id: int,
    set_aside: Column | None = None,
    on_set_aside: Callable[[pa.Table], None] | None = None,
) -> dict[str, Any]:
    """Archive one micro-batch (a Spark DataFrame of events), exactly once per ``batch_id``: files first, then the
    commit record. A batch whose commit exists is not written again. Returns the commit record.

    ``set_aside`` (a boolean Spark column) names records that are not archived; they are written in the same Spark
    job beside the archived ones and handed to ``on_set_aside`` as a pyarrow Table before the commit (so a batch
    that dies before its commit hands them over again when it is replayed: at least once). One job, one pass over
    the records, whatever the split."""
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    commit = _commit_path(epoch, batch_id)
    if commit.exists():
        committed: dict[str, Any] = json.loads(commit.read_text())
        return committed
    staging = epoch / STAGING / f"batch={batch_id}"
    shutil.rmtree(staging, ignore_errors=True)
    hour = F.date_format("event_time", SPARK_HOUR_LABEL_FORMAT)
    if set_aside is not None:
        hour = F.when(set_aside, F.lit(SET_ASIDE)).otherwise(hour)
    writer = records.withColumn(HOUR_COLUMN, hour).coalesce(WRITERS).write.partitionBy(HOUR_COLUMN)
    for column in PLAIN_ENCODED:
        writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
    writer.parquet(str(staging))
    position = _staged_position(staging)
    aside = staging / f"{HOUR_COLUMN}={SET_ASIDE}"
    set_aside_rows = 0
    if aside.is_dir():
        table = pq.read_table(aside)
        set_aside_rows = table.num_rows
        if on_set_aside is not None:
            on_set_aside(table)
        shutil.rmtree(aside)
    files = []
    for index, source in enumerate(sorted(staging.glob(f"{HOUR_COLUMN}=*/*.parquet"))):
        hour_label = source.parent.name.split("=", 1)[1]
        target = epoch / f"{HOUR_COLUMN}={hour_label}" / f"batch-{batch_id:012d}-{index:03d}.parquet"
        target.parent.mkdir(exist_ok=True)
        rows = pq.ParquetFile(source).metadata.num_rows
        os.replace(source, target)
        files.append({"path": str(target.relative_to(epoch)), "hour": hour_label, "rows": rows})
    record = {
        "batch_id": batch_id,
        "files": files,
        "rows": sum(f["rows"] for f in files),
        "set_aside": set_aside_rows,
        **position,
    }
    partial = commit.with_suffix(".tmp")
    partial.write_text(json.dumps(record))
    os.replace(partial, commit)
    shutil.rmtree(staging, ignore_errors=True)
    return record


def _staged_position(staging: Path) -> dict[str, Any]:
    """Where a staged micro-batch (archived and set-aside records) reached in Kafka, per partition: ``read_to`` (the
    offset after its last record) and ``newest_ms`` (its newest record's Kafka timestamp)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    staged = [str(p) for p in staging.glob("*/*.parquet")]
    columns = ["kafka_partition", "kafka_offset", "kafka_timestamp"]
    table = ds.dataset(staged, format="parquet").to_table(columns=columns) if staged else None
    if table is None or not table.num_rows:
        return {"read_to": {}, "newest_ms": {}}
    millis = table.column("kafka_timestamp").cast(pa.timestamp("ms")).cast(pa.int64())
    table = table.set_column(2, "kafka_ms", millis)
    per_partition = table.group_by("kafka_partition").aggregate([("kafka_offset", "max"), ("kafka_ms", "max")])
    rows = per_partition.to_pylist()
    return {
        "read_to": {str(r["kafka_partition"]): r["kafka_offset_max"] + 1 for r in rows},
        "newest_ms": {str(r["kafka_partition"]): r["kafka_ms_max"] for r in rows},
    }


@dataclasses.dataclass(frozen=True)
class IngestPosition:
    """How far the archive has committed Kafka, per partition, from the epochs' commit records."""

    read_to: dict[int, int]  # the offset after the last committed record
    newest_ms: dict[int, int]  # the newest committed record's Kafka timestamp
    recorded: bool = True  # False when the newest commit predates commit records carrying a position

    @property
    def newest_kafka_ms(self) -> int | None:
        return max(self.newest_ms.values(), default=None)


def ingest_position(archive_dir: Path) -> IngestPosition:
    read_to: dict[int, int] = {}
    newest: dict[int, int] = {}
    last: dict[str, Any] | None = None
    for epoch in epochs(archive_dir):
        for record in commits(epoch):
            last = record
            for partition, offset in record.get("read_to", {}).items():
                read_to[int(partition)] = max(read_to.get(int(partition), 0), offset)
            for partition, millis in record.get("newest_ms", {}).items():
                newest[int(partition)] = max(newest.get(int(partition), millis), millis)
    return IngestPosition(read_to, newest, last is None or "read_to" in last)


def read(spark: SparkSession, archive_dir: Path) -> DataFrame | None:
    """Every committed event of every epoch, or None if the archive holds no epoch yet."""
    found = epochs(archive_dir)
    if not found:
        return None
    frames = [
        spark.read.schema(ARCHIVE_SCHEMA).option("basePath", str(epoch)).parquet(*map(str, paths))
        for epoch in found
        if (paths := committed_files(epoch))
    ]
    if not frames:
        return spark.createDataFrame([], ARCHIVE_SCHEMA)
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def committed_files(epoch: Path) -> list[Path]:
    """The files of one epoch that its commit records list."""
    return [epoch / f["path"] for record in commits(epoch) for f in record["files"]]


def committed_paths(archive_dir: Path) -> list[Path]:
    """Every file of the master dataset: the committed files of every epoch (what a reader outside Spark reads)."""
    return [path for epoch in epochs(archive_dir) for path in committed_files(epoch)]


def hour_counts(archive_dir: Path) -> dict[str, int]:
    """Hour label (``YYYY-MM-DDTHH``) → records archived for it, over every epoch, from the commit records."""
    counts: Counter[str] = Counter()
    for epoch in epochs(archive_dir):
        for record in commits(epoch):
            for f in record["files"]:
                counts[f["hour"]] += f["rows"]
    return dict(counts)


def integrity(archive_dir: Path) -> dict[str, Any]:
    """Committed files that are missing (the batch layer would fail on them) and files on disk no commit lists
    (left by a micro-batch that crashed before its commit: harmless, never read)."""
    missing, orphans, committed_count = [], [], 0
    settled = time.time() - ORPHAN_AFTER_S  # younger files may belong to a micro-batch about to commit
    for epoch in epochs(archive_dir):
        committed = set(committed_files(epoch))
        committed_count += len(committed)
        missing += [str(p) for p in committed if not p.exists()]
        orphans += [
            str(p)
            for p in epoch.glob(f"{HOUR_COLUMN}=*/*.parquet")
            if p not in committed and p.stat().st_mtime < settled
        ]
    return {"committed_files": committed_count, "missing_files": sorted(missing), "orphan_files": sorted(orphans)}


def last_offsets(spark: SparkSession, archive_dir: Path) -> dict[int, int]:
    """Kafka partition → the highest offset the archive holds (where a new epoch continues)."""
    from pyspark.sql import functions as F

    archived = read(spark, archive_dir)
    if archived is None:
        return {}
    return {
        r.kafka_partition: r.last
        for r in archived.groupBy("kafka_partition").agg(F.max("kafka_offset").alias("last")).collect()
    }
