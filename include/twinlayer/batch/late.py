"""When an hour may be computed, and which hours need computing again because late events reached the archive."""

from __future__ import annotations

import dataclasses
import logging
import time

from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS, hour_start, iso
from twinlayer.storage import archive

log = logging.getLogger(__name__)

CLOSE_GRACE_MS = 2 * 60 * 1000  # the speed layer's watermark and archive trigger, with room to spare
UNPUBLISHED_GRACE_MS = HOUR_MS  # an hour never published is the hourly run's to do first
LOOKBACK_MS = 7 * 24 * HOUR_MS  # older hours are for an explicit backfill


@dataclasses.dataclass(frozen=True)
class ArchivePosition(archive.IngestPosition):
    """How far the archive has committed Kafka per partition, and where Kafka ends (None when Kafka did not
    answer)."""

    kafka_end: dict[int, int] | None = None

    @property
    def unread(self) -> int | None:
        """Records in Kafka the archive has not committed yet (None when unknown)."""
        if self.kafka_end is None or not self.recorded:
            return None
        return sum(max(0, end - self.read_to.get(p, 0)) for p, end in self.kafka_end.items())

    def lagging(self, since_ms: int) -> list[int]:
        """Partitions that may still hold a record Kafka received before ``since_ms`` the archive has not committed:
        neither read to Kafka's end nor past a record received at ``since_ms`` or later."""
        assert self.kafka_end is not None, "Kafka's end offsets are needed"
        return [
            p
            for p, end in sorted(self.kafka_end.items())
            if self.read_to.get(p, 0) < end and self.newest_ms.get(p, since_ms - 1) < since_ms
        ]


def archive_position(settings: Settings) -> ArchivePosition:
    from twinlayer.storage.kafka import end_offsets

    position = archive.ingest_position(settings.archive_dir)
    try:
        kafka_end: dict[int, int] | None = end_offsets(settings.kafka_bootstrap, settings.events_topic)
    except Exception as exc:  # noqa: BLE001 — Kafka down: no hour can be known to be complete
        log.warning("Kafka's end offsets are unknown: %s", exc)
        kafka_end = None
    return ArchivePosition(position.read_to, position.newest_ms, position.recorded, kafka_end)


def hour_is_closed(
    settings: Settings, hour_end_ms: int, now_ms: int | None = None, position: ArchivePosition | None = None
) -> bool:
    """True once no on-time event of the hour can still be on its way to the archive: the grace after the hour's
    end has passed, and on every partition of the topic the archive has committed either a record Kafka received
    after that or everything the partition holds. With the speed layer down or behind — or Kafka unreachable — an
    hour waits instead of being published short. (Kafka timestamps are the producers' clocks: a producer far
    ahead of the others can close an hour early on its partitions.)"""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    closes_at = hour_end_ms + CLOSE_GRACE_MS
    if now_ms < closes_at:
        return False
    position = archive_position(settings) if position is None else position
    if not position.recorded:
        log.warning("the archive's newest commit carries no Kafka position (written before they did): time decides")
        return True
    if position.kafka_end is None:
        log.info("hour ending %s waits: Kafka's end offsets are unknown", hour_end_ms)
        return False
    lagging = position.lagging(closes_at)
    if lagging:
        log.info(
            "hour ending %s waits for the archive on partitions %s (%s records not archived yet)",
            hour_end_ms,
            lagging,
            position.unread,
        )
    return not lagging


def late_hours(
    settings: Settings,
    now_ms: int | None = None,
    counts: dict[str, int] | None = None,
    publications: dict[int, dict] | None = None,
) -> list[dict]:
    """Closed hours whose archive holds more records than their published version read: events arrived after the
    hour was recomputed (or, for an hour never published, after its hourly run found it empty or failed). Oldest
    first, each {"hour", "hour_ms", "published", "archived"}; "published" is 0 for an hour never published, which
    counts only once its hourly run has had an hour to do it. Hours older than a week are left to backfills."""
    from twinlayer.batch.publish import published
    from twinlayer.storage import hbase as hbase_store

    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    counts = archive.hour_counts(settings.archive_dir) if counts is None else counts
    if publications is None:
        publications = published(hbase_store.pool_for(settings, size=1), settings)
    stale = []
    for label, archived in sorted(counts.items()):
        hour_ms = hour_start(label)
        entry = publications.get(hour_ms)
        grace = CLOSE_GRACE_MS if entry else UNPUBLISHED_GRACE_MS
        if now_ms - LOOKBACK_MS <= hour_ms and now_ms >= hour_ms + HOUR_MS + grace:
            version = entry["version"] if entry else 0
            if archived > version:
                stale.append({"hour": label, "hour_ms": hour_ms, "published": version, "archived": archived})
    return stale


def recompute_requests(stale: list[dict], now_ms: int | None = None) -> list[dict]:
    """One run request of the recompute DAG per late hour. Its data interval is the hour, inferred by the DAG's
    timetable from ``run_after`` (the hour's end); its logical date is the request time (a run for the hour's own
    logical date may exist already, and logical dates are unique per DAG). The run id names the archived count,
    so a second request for the same state of the archive is recognised as a duplicate."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return [
        {
            "trigger_run_id": f"late__{item['hour']}__{item['archived']}",
            "logical_date": iso(now_ms + i),
            "run_after": iso(item["hour_ms"] + HOUR_MS),
        }
        for i, item in enumerate(stale)
    ]
