"""The master dataset: every valid event once, immutable Parquet partitioned by event hour, in epochs.

This module is the archive's one home: its schema (from the event model), how the hour partition is spelled, which
epochs exist, which files are part of the dataset, how Spark reads it, how many records each hour holds and
whether every committed file is on disk.

The speed layer writes it through Spark's file sink, whose commit log (``_spark_metadata`` in each epoch) is the
only authority on which Parquet files belong to the dataset: a file a crashed micro-batch left behind does not.
Reading that log and the committed files' footers answers "how many records does each hour hold" in milliseconds,
without a JVM, and equals what the batch layer's Spark read counts (the hour's version; a test holds them
together). An epoch (``epoch=0001``, …) is one life of the speed layer's checkpoints: a speed layer that lost its
checkpoints opens a new epoch instead of writing into a commit log it no longer knows.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlparse

from twinlayer.model import events as ev
from twinlayer.model.hours import SPARK_HOUR_LABEL_FORMAT

HOUR_COLUMN = "event_hour"
ARCHIVE_COLUMNS: dict[str, str] = {**ev.EVENT_COLUMNS, **ev.SOURCE_COLUMNS, HOUR_COLUMN: "string"}
# Readers pass it explicitly: an epoch whose commit log lists no file yet still reads as an empty table.
ARCHIVE_SCHEMA = ", ".join(f"{name} {sql_type}" for name, sql_type in ARCHIVE_COLUMNS.items())
COMPACT_SUFFIX = ".compact"
ORPHAN_AFTER_S = 600


def epochs(archive_dir: Path) -> list[Path]:
    """The epoch folders of the archive that hold a file-sink commit log, oldest first."""
    if not archive_dir.is_dir():
        return []
    return sorted(p for p in archive_dir.glob("epoch=*") if (p / "_spark_metadata").is_dir())


def epoch_path(archive_dir: Path, number: int) -> Path:
    return archive_dir / f"epoch={number:04d}"


def with_event_hour(events):
    """Adds the partition column ``event_hour`` (the event's UTC hour, spelled as ``hours.hour_label``)."""
    from pyspark.sql import functions as F

    return events.withColumn(HOUR_COLUMN, F.date_format("event_time", SPARK_HOUR_LABEL_FORMAT))


def read(spark, archive_dir: Path):
    """Every committed event of every epoch (each read through its own commit log), or None if there is none."""
    frames = [spark.read.schema(ARCHIVE_SCHEMA).parquet(str(epoch)) for epoch in epochs(archive_dir)]
    if not frames:
        return None
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def _batch_number(path: Path) -> int:
    return int(path.name.removesuffix(COMPACT_SUFFIX))


def committed_files(epoch: Path) -> list[Path]:
    """The files of one epoch that its commit log lists as added (and not deleted), from the newest compaction on."""
    log_dir = epoch / "_spark_metadata"
    entries = [p for p in log_dir.iterdir() if p.name.removesuffix(COMPACT_SUFFIX).isdigit()]
    compacts = [p for p in entries if p.name.endswith(COMPACT_SUFFIX)]
    start = max((_batch_number(p) for p in compacts), default=-1)
    files: dict[str, bool] = {}
    for entry in sorted((p for p in entries if _batch_number(p) >= start), key=_batch_number):
        lines = entry.read_text().splitlines()
        if not lines or not lines[0].startswith("v"):
            raise ValueError(f"{entry}: not a file-sink commit log entry")
        for line in lines[1:]:
            if line.strip():
                record = json.loads(line)
                files[record["path"]] = record.get("action", "add") == "add"
    return [Path(unquote(urlparse(path).path)) for path, kept in files.items() if kept]


def hour_of(path: Path) -> str | None:
    for part in path.parts:
        if part.startswith(f"{HOUR_COLUMN}="):
            return part.split("=", 1)[1]
    return None


def hour_counts(archive_dir: Path) -> dict[str, int]:
    """Hour label (``YYYY-MM-DDTHH``) → records archived for it, over every epoch."""
    import pyarrow.parquet as pq

    counts: Counter[str] = Counter()
    for epoch in epochs(archive_dir):
        for path in committed_files(epoch):
            hour = hour_of(path)
            if hour is not None:
                counts[hour] += pq.ParquetFile(path).metadata.num_rows
    return dict(counts)


def integrity(archive_dir: Path) -> dict:
    """Committed files that are missing (the batch layer would fail on them) and files on disk no commit lists
    (left by a micro-batch that crashed before its commit: harmless, never read)."""
    missing, orphans, committed_count = [], [], 0
    settled = time.time() - ORPHAN_AFTER_S  # younger files may belong to a micro-batch about to commit
    for epoch in epochs(archive_dir):
        committed = set(committed_files(epoch))
        committed_count += len(committed)
        missing += [str(p) for p in committed if not p.exists()]
        orphans += [str(p) for p in epoch.glob(f"{HOUR_COLUMN}=*/*.parquet")
                    if p not in committed and p.stat().st_mtime < settled]
    return {"committed_files": committed_count, "missing_files": sorted(missing), "orphan_files": sorted(orphans)}


def last_offsets(spark, archive_dir: Path) -> dict[int, int]:
    """Kafka partition → the highest offset the archive holds (where a new epoch continues)."""
    from pyspark.sql import functions as F

    archived = read(spark, archive_dir)
    if archived is None:
        return {}
    return {r.kafka_partition: r.last for r in
            archived.groupBy("kafka_partition").agg(F.max("kafka_offset").alias("last")).collect()}
