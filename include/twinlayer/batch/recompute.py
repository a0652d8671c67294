"""The batch layer's computation: the views of one hour, exactly, from the archive, written as a new version.

The computation is ``views.aggregate`` — the same function the speed layer runs — over the hour's archived events
after an exact dedupe on ``event_id`` (``batch.dedupe``: the record Kafka received first), with exact distinct
counts beside the sketches.

Versions. The version of an hour is the number of archived records of that hour. The archive only grows, so a
version number only grows as late events land; and the same archive gives the same version, so a rerun or a
backfill of an hour rewrites byte-identical cells (same row, column, timestamp and value). A changed definition of a
view writes rows of its own (``View.stored_name``), so a version number names one set of cells per definition; the run
record and the publication say which definitions (``fingerprints``) a version was computed with. Batch cells carry the
version as their HBase timestamp and the family keeps every version, so a published version and its rollback history
survive any number of unpublished versions written after them (a failed gate, a run that died mid-write)
and any compaction. ``batch.publish`` makes a version visible.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

from twinlayer.batch import dedupe
from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.model.views import VIEWS, View, definitions_key, event_count, fingerprints, slot_name
from twinlayer.runtime import faults
from twinlayer.storage import archive
from twinlayer.storage import hbase as hbase_store


def check_views_fit_hours(views: Sequence[View]) -> None:
    for view in views:
        if HOUR_MS % view.window_ms:
            raise ValueError(f"view {view.name}: a {view.window_seconds}s window does not divide an hour")


@dataclasses.dataclass(frozen=True)
class HourResult:
    hour: str
    version: int  # = archived records of the hour
    events: int
    view_rows: int
    seconds: float
    stages: dict[str, float] = dataclasses.field(default_factory=dict)  # seconds of each stage of the job
    views: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> fingerprint of the definitions used

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def hour_events(spark, settings: Settings, hour_ms: int):
    """(archived records of the hour, their version) — None when the archive has nothing for it."""
    from pyspark.sql import functions as F

    records = archive.read(spark, settings.archive_dir)
    if records is None:
        return None, 0
    # the partition alone: a record in it whose event time lies outside the hour is for the quality gate to catch
    raw = records.where(F.col(archive.HOUR_COLUMN) == hour_label(hour_ms))
    return raw, raw.count()


def exact_events(raw):
    """The batch layer's dedupe: exact over the whole hour, the first record Kafka received of every event id
    (``batch.dedupe``; a re-sent event carries the same event time, so its copies share the hour)."""
    return dedupe.first_received(raw)


def snapshot_path(settings: Settings, hour_ms: int, version: int, views: dict[str, str] | None) -> Path:
    """Where the view rows of ``version`` computed with the definitions ``views`` (``fingerprints``) are kept: the
    same version number computed with other definitions (a backfill after a view changed) has a snapshot of its
    own."""
    return settings.batch_dir / f"hour={hour_label(hour_ms)}" / f"version={version}" / f"views={definitions_key(views)}"


WRITE_CHUNK = 2000
# an hour's groups: 54k for the two views (keys x windows), whatever its events; a sketch is a few KB at most
SKETCH_GROUPS_IN_MEMORY = 100_000


def recompute_hour(spark, settings: Settings, hour_ms: int, views: Sequence[View] = VIEWS) -> HourResult:
    """Compute the hour's views from the archive and write them as version N (N = archived records of the hour)."""
    from twinlayer.model.views import aggregate

    check_views_fit_hours(views)
    started = time.perf_counter()
    raw, version = hour_events(spark, settings, hour_ms)
    if raw is None or version == 0:
        return HourResult(hour_label(hour_ms), 0, 0, 0, time.perf_counter() - started, views=fingerprints(views))
    stages: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        stages[stage] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    # An hour has tens of thousands of (view, key, window) groups. Past Spark's default of 128 groups in a task it
    # stops aggregating the sketches in a hash map and sorts every row instead (2M events: 8.4-11.0 s -> 6.2-7.2 s)
    threshold = "spark.sql.objectHashAggregate.sortBased.fallbackThreshold"
    before = spark.conf.get(threshold)
    spark.conf.set(threshold, str(SKETCH_GROUPS_IN_MEMORY))
    # one Spark job: read (the columns the views and the dedupe need), dedupe, aggregate; the view rows
    # (a few per key and window, whatever the events) are kept for the snapshot and the HBase write
    rows = aggregate(exact_events(raw), views, exact=True).cache()
    try:
        rows.write.mode("overwrite").parquet(str(snapshot_path(settings, hour_ms, version, fingerprints(views))))
        lap("read_dedupe_aggregate_snapshot")
        collected = rows.collect()
        lap("collect")
    finally:
        rows.unpersist()
        spark.conf.set(threshold, before)
    event_count = counted_events(collected, views)
    if event_count is None:
        event_count = exact_events(raw).count()
    mutations = hbase_store.view_mutations(collected, batch_id=version, views=views, exact=True, timestamp=version)
    pool = hbase_store.pool_for(settings)
    hbase_store.ensure_batch_table(pool, settings.batch_table)
    writer = hbase_store.ViewWriter(pool, settings.batch_table)
    for first in range(0, len(mutations), WRITE_CHUNK):  # a crash leaves part of an unpublished version, no more
        writer.write(mutations[first : first + WRITE_CHUNK])
        faults.point(faults.BATCH_WRITING)
    lap("hbase_write")
    return HourResult(
        hour_label(hour_ms),
        version,
        event_count,
        len(collected),
        time.perf_counter() - started,
        stages,
        fingerprints(views),
    )


def counted_events(rows, views: Sequence[View]) -> int | None:
    """The hour's distinct events from its view rows: the sum of the count of a view that counts every event (None
    when no view does)."""
    counting = event_count(views)
    if counting is None:
        return None
    view, measure = counting
    column = slot_name(view, measure)
    return sum(row[column] for row in rows if row["view"] == view.name)
