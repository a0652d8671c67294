"""The batch layer: recompute the views of one hour exactly from the archive, as a new version, and publish it.

The computation is ``views.aggregate`` — the same function the speed layer runs — over the hour's archived events
after an exact dedupe on ``event_id``, with exact distinct counts beside the sketches.

Versions. The version of an hour is the number of archived records of that hour. The archive only grows, so a
version number only grows as late events land; and the same archive gives the same version, so a rerun or a
backfill of an hour rewrites byte-identical cells (same row, column, timestamp and value). Batch cells carry the
version as their HBase timestamp and the family keeps ``batch_versions_kept`` versions, so a published version and
its predecessors coexist.

Publishing. One row of the batch table (``~publish``, family ``p``) holds, per hour, the published version and the
ones before it; publishing or rolling back an hour is one put to that row, which HBase applies atomically. Readers
look the version up there first, so they never see a half-written version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from twinlayer import hbase_store
from twinlayer.config import Settings
from twinlayer.views import VIEWS, View

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
PUBLISH_ROW = b"~publish"
PUBLISH_FAMILY = "p"
HISTORY_KEPT = 4


def hour_label(hour_start_ms: int) -> str:
    return dt.datetime.fromtimestamp(hour_start_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H")


def hour_start(label: str) -> int:
    return int(dt.datetime.strptime(label, "%Y-%m-%dT%H").replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def hours_in(start_ms: int, end_ms: int) -> list[int]:
    """Hour starts covering [start_ms, end_ms); both ends must be whole hours."""
    if start_ms % HOUR_MS or end_ms % HOUR_MS or end_ms <= start_ms:
        raise ValueError(f"interval [{start_ms}, {end_ms}) is not a positive number of whole UTC hours")
    return list(range(start_ms, end_ms, HOUR_MS))


def check_views_fit_hours(views: Sequence[View]) -> None:
    for view in views:
        if HOUR_MS % view.window_ms:
            raise ValueError(f"view {view.name}: a {view.window_seconds}s window does not divide an hour")


@dataclasses.dataclass(frozen=True)
class HourResult:
    hour: str
    version: int
    raw_rows: int
    events: int
    view_rows: int
    seconds: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- Spark side -------------------------------------------------------------------------------------------------


def hour_events(spark, settings: Settings, hour_ms: int):
    """(archived records of the hour, their version) — None when the archive has nothing for it."""
    from pyspark.sql import functions as F

    from twinlayer.speed import read_archive

    archive = read_archive(spark, settings.archive_dir)
    if archive is None:
        return None, 0
    # the partition alone: a record in it whose event time lies outside the hour is for the quality gate to catch
    raw = archive.where(F.col("event_hour") == hour_label(hour_ms))
    return raw, raw.count()


def exact_events(raw):
    """The batch layer's dedupe: exact over the whole hour (a re-sent event carries the same event time)."""
    return raw.dropDuplicates(["event_id"])


def snapshot_path(settings: Settings, hour_ms: int, version: int) -> Path:
    return settings.batch_dir / f"hour={hour_label(hour_ms)}" / f"version={version}"


def recompute_hour(spark, settings: Settings, hour_ms: int, views: Sequence[View] = VIEWS) -> HourResult:
    """Compute the hour's views from the archive and write them as version N (N = archived records of the hour)."""
    from twinlayer.views import aggregate

    check_views_fit_hours(views)
    started = time.perf_counter()
    raw, version = hour_events(spark, settings, hour_ms)
    if raw is None or version == 0:
        return HourResult(hour_label(hour_ms), 0, 0, 0, 0, time.perf_counter() - started)
    events = exact_events(raw).cache()
    try:
        rows = aggregate(events, views, exact=True).cache()
        path = snapshot_path(settings, hour_ms, version)
        rows.write.mode("overwrite").parquet(str(path))
        collected = rows.collect()
        event_count = events.count()
    finally:
        events.unpersist()
    mutations = hbase_store.view_mutations(collected, batch_id=version, views=views, exact=True, timestamp=version)
    pool = batch_pool(settings)
    ensure_batch_table(pool, settings)
    hbase_store.ViewWriter(pool, settings.batch_table).write(mutations)
    return HourResult(hour_label(hour_ms), version, version, event_count, len(collected),
                      time.perf_counter() - started)


# --- HBase side: versions, publish, rollback --------------------------------------------------------------------


def batch_pool(settings: Settings, size: int = 2):
    return hbase_store.connection_pool(settings.host_of("thrift_port"), settings.thrift_port, size=size)


def ensure_batch_table(pool, settings: Settings) -> None:
    hbase_store.ensure_table(pool, settings.batch_table, max_versions=settings.batch_versions_kept,
                             extra_families={PUBLISH_FAMILY: {"max_versions": 1}})


def published(pool, settings: Settings) -> dict[int, dict]:
    """Hour start → {"version", "previous", "published_ms"} for every published hour."""
    def read(conn):
        if settings.batch_table.encode() not in conn.tables():
            return {}
        return conn.table(settings.batch_table).row(PUBLISH_ROW, columns=[PUBLISH_FAMILY.encode()])

    row = hbase_store.with_connection(pool, read)
    return {hour_start(column.decode().split(":", 1)[1]): json.loads(value) for column, value in row.items()}


def boundary(publications: dict[int, dict]) -> int | None:
    """The time boundary: the end of the newest published hour. Windows before it are served from the batch
    layer where their hour is published; the answer always says which source served each window."""
    return max(publications) + HOUR_MS if publications else None


def publish(pool, settings: Settings, hour_ms: int, version: int) -> dict:
    """Point the hour at ``version`` with one atomic row put; the previous versions stay for rollback."""
    if version <= 0:
        raise ValueError(f"nothing to publish for {hour_label(hour_ms)}: version {version}")
    current = published(pool, settings).get(hour_ms)
    if current and current["version"] == version:
        return current
    if current and current["version"] > version and "rolled_back_from" not in current:
        # versions grow with the archive: a lower one is older data (a slower run of the same hour); keep the newer
        log.warning("%s: version %d is published, not replacing it with the older %d", hour_label(hour_ms),
                    current["version"], version)
        return current
    history = ([current["version"], *current["previous"]] if current else [])[:HISTORY_KEPT]
    entry = {"version": version, "previous": history, "published_ms": int(time.time() * 1000)}
    _put_pointer(pool, settings, hour_ms, entry)
    return entry


def rollback(pool, settings: Settings, hour_ms: int) -> dict:
    """Point the hour back at the version published before the current one."""
    current = published(pool, settings).get(hour_ms)
    if not current or not current["previous"]:
        raise ValueError(f"{hour_label(hour_ms)} has no earlier published version to roll back to")
    entry = {"version": current["previous"][0], "previous": current["previous"][1:],
             "published_ms": int(time.time() * 1000), "rolled_back_from": current["version"]}
    _put_pointer(pool, settings, hour_ms, entry)
    return entry


def _put_pointer(pool, settings: Settings, hour_ms: int, entry: dict) -> None:
    hbase_store.with_connection(pool, lambda conn: conn.table(settings.batch_table).put(
        PUBLISH_ROW, {f"{PUBLISH_FAMILY}:{hour_label(hour_ms)}".encode(): json.dumps(entry).encode()}))
