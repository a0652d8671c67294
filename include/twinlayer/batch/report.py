"""What the batch layer tells Prometheus (through the Pushgateway): runs, the boundary, the archive's state."""

from __future__ import annotations

import time

from twinlayer.model.config import Settings
from twinlayer.runtime.pushgateway import push_gauges

JOB = "twinlayer_batch"


def push_boundary(settings: Settings, boundary_ms: int | None) -> None:
    if boundary_ms is None:
        return
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_boundary_timestamp_seconds",
        "End of the newest published hour: the serving layer's time boundary",
        {(): boundary_ms / 1000},
        (),
        {"metric": "boundary"},
    )


def export_run_metrics(settings: Settings, hour_ms: int, seconds: float) -> None:
    from twinlayer.batch.runs import read_run_record

    record = read_run_record(settings, hour_ms)
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_rows_recomputed",
        "Archived rows read by the last recompute",
        {(): float(record["version"])},
        (),
        {"metric": "rows"},
    )
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_spark_seconds",
        "Spark time of the last recompute",
        {(): float(record["seconds"])},
        (),
        {"metric": "spark_seconds"},
    )
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_run_seconds",
        "Wall time of the last recompute run",
        {(): seconds},
        (),
        {"metric": "run_seconds"},
    )
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_last_success_timestamp_seconds",
        "When an hour was last recomputed and published",
        {(): time.time()},
        (),
        {"metric": "last_success"},
    )


def export_state_metrics(settings: Settings, now_ms: int | None = None) -> dict:
    """What the archive and the batch layer hold right now, for the lambda overview: archived records, published
    hours and boundary, hours with late events not yet recomputed and how many records they miss."""
    from twinlayer.batch.late import archive_position, late_hours
    from twinlayer.batch.publish import boundary, published
    from twinlayer.storage import archive
    from twinlayer.storage import hbase as hbase_store

    counts = archive.hour_counts(settings.archive_dir)
    publications = published(hbase_store.pool_for(settings, size=1), settings)
    stale = late_hours(settings, now_ms, counts, publications)
    position = archive_position(settings)
    state = {
        "archive_records": sum(counts.values()),
        "archive_hours": len(counts),
        "published_hours": len(publications),
        "late_hours": len(stale),
        "late_records": sum(s["archived"] - s["published"] for s in stale),
        "boundary_ms": boundary(publications),
        "archive_newest_kafka_ms": position.newest_kafka_ms,
        "archive_unread_records": position.unread,
    }
    gauges = {
        "twinlayer_archive_records": ("Records in the master dataset", state["archive_records"]),
        "twinlayer_archive_hours": ("Hours the master dataset holds records of", state["archive_hours"]),
        "twinlayer_batch_published_hours": ("Hours with a published batch version", state["published_hours"]),
        "twinlayer_batch_late_hours": (
            "Closed hours whose archive holds more than their published version",
            state["late_hours"],
        ),
        "twinlayer_batch_late_records": ("Archived records not yet in a published version", state["late_records"]),
    }
    if position.newest_kafka_ms is not None:
        gauges["twinlayer_archive_committed_through_seconds"] = (
            "Kafka time of the newest record the archive has committed (hours before it may be recomputed)",
            position.newest_kafka_ms / 1000,
        )
    if position.unread is not None:
        gauges["twinlayer_archive_unread_records"] = (
            "Records in Kafka the archive has not committed yet",
            position.unread,
        )
    for metric, (doc, value) in gauges.items():
        push_gauges(settings, JOB, metric, doc, {(): float(value)}, (), {"metric": metric.removeprefix("twinlayer_")})
    push_boundary(settings, state["boundary_ms"])
    return state
