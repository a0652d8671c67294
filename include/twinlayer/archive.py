"""What the master dataset holds, per hour, without starting Spark.

The archive is written by Spark's file sink, whose commit log (``_spark_metadata`` in each epoch) is the only
authority on which Parquet files are part of the dataset: a file a crashed micro-batch left behind is not. Reading
that log and the committed files' footers answers "how many records does each hour hold" in milliseconds, which
lets the every-few-minutes DAGs (metric export, late-data recompute) run without a JVM. The count equals what the
batch layer's Spark read counts — the hour's version — and a test holds the two together.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlparse

from twinlayer.speed import archive_epochs

COMPACT_SUFFIX = ".compact"


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
        if part.startswith("event_hour="):
            return part.split("=", 1)[1]
    return None


def hour_counts(archive_dir: Path) -> dict[str, int]:
    """Hour label (``YYYY-MM-DDTHH``) → records archived for it, over every epoch."""
    import pyarrow.parquet as pq

    counts: Counter[str] = Counter()
    for epoch in archive_epochs(archive_dir):
        for path in committed_files(epoch):
            hour = hour_of(path)
            if hour is not None:
                counts[hour] += pq.ParquetFile(path).metadata.num_rows
    return dict(counts)
