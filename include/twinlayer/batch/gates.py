"""The quality gates of an hour run, as steps: validate, push the gate's metrics, refuse to go on when it failed.

``gate_raw`` runs Great Expectations on the archived hour and reconciles it with what the speed layer counted;
``gate_version`` checks the version the recompute wrote; ``check_archive`` is the archive-quality DAG's check.
The suites themselves live in ``batch.quality``.
"""

from __future__ import annotations

import logging
import time

from twinlayer.batch import recompute
from twinlayer.batch.quality import (
    GateResult,
    QualityGateFailed,
    validate_raw,
    validate_version,
)
from twinlayer.batch.report import JOB
from twinlayer.batch.runs import read_run_record, record_gate_pass, record_hour_fact
from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.model.views import VIEWS, View, event_count, key_column, selected
from twinlayer.runtime.pushgateway import push_gauges
from twinlayer.storage import archive
from twinlayer.storage import hbase as hbase_store

log = logging.getLogger(__name__)


def speed_event_count(settings: Settings, raw, hour_ms: int, views: tuple[View, ...] = VIEWS) -> int | None:
    """Distinct events the speed layer counted for the hour: the sum, over every key the archive holds, of the
    view measure that counts all events (``views.event_count``). None when no view counts all events."""
    counted = event_count(views)
    if counted is None:
        return None
    view, measure = counted
    keys = [r.key for r in raw.where(selected(view)).select(key_column(view).alias("key")).distinct().collect()]
    pool = hbase_store.pool_for(settings, size=1)
    return sum(
        int(window.measures.get(measure.name, 0))
        for key in keys
        for window in hbase_store.read_view(pool, settings.speed_table, view, key, hour_ms, hour_ms + HOUR_MS)
    )


def gate_raw(
    settings: Settings, hour_ms: int, gate: str = "raw", reconcile: bool = True, views: tuple[View, ...] = VIEWS
) -> GateResult:
    """Validate the archived hour; pushes the gate's metric whatever the outcome, raises on failure.
    ``reconcile``: also check that the archive holds at least what the speed layer counted."""
    from twinlayer.runtime.spark import session_scope

    with session_scope(f"twinlayer-gate-{gate}", settings) as spark:
        raw, version = recompute.hour_events(spark, settings, hour_ms)
        if raw is None or version == 0:
            result = GateResult(gate, False, 0, ["the archive holds no event for this hour"], {"raw_rows": 0})
        else:
            speed = speed_event_count(settings, raw, hour_ms, views) if reconcile else None
            result = validate_raw(raw, hour_ms, speed or None, gate=gate, views=views)
    push_gate(settings, hour_ms, result)
    result.raise_if_failed()
    return result


def gate_version(settings: Settings, hour_ms: int, raw_facts: dict, views: tuple[View, ...] = VIEWS) -> GateResult:
    """Validate the version the recompute just wrote; ``facts["version"]`` names it, and is what publish must
    publish (another run of the same hour may write a newer run record meanwhile)."""
    import pandas as pd

    record = read_run_record(settings, hour_ms)
    version, definitions = record["version"], record.get("views")
    snapshot = pd.read_parquet(recompute.snapshot_path(settings, hour_ms, version, definitions))
    result = validate_version(snapshot, raw_facts, views)
    result.facts["version"] = version
    push_gate(settings, hour_ms, result)
    result.raise_if_failed()
    record_gate_pass(settings, hour_ms, version, definitions)
    return result


def push_gate(settings: Settings, hour_ms: int, result: GateResult) -> None:
    record_hour_fact(
        settings,
        hour_ms,
        f"gate_{result.gate}",
        {
            "success": result.success,
            "failures": result.failures[:5],
            "version": result.facts.get("version"),
            "ran_ms": int(time.time() * 1000),
        },
    )
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_gate_last_run_timestamp_seconds",
        "When the gate last ran",
        {(result.gate,): time.time()},
        ("gate",),
        {"gate": result.gate, "metric": "gate_last_run"},
    )
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_gate_success",
        "1 when the last run of the quality gate passed",
        {(result.gate,): 1.0 if result.success else 0.0},
        ("gate",),
        {"gate": result.gate},
    )
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_gate_failed_expectations",
        "Expectations failed in the last run",
        {(result.gate,): float(len(result.failures))},
        ("gate",),
        {"gate": result.gate, "metric": "gate_failures"},
    )
    if "conflicting_duplicates" in result.facts:
        push_gauges(
            settings,
            JOB,
            "twinlayer_batch_conflicting_duplicates",
            "Event ids of the gate's last hour whose records differ in content (the first received counts)",
            {(result.gate,): float(result.facts["conflicting_duplicates"])},
            ("gate",),
            {"gate": result.gate, "metric": "conflicting_duplicates"},
        )
    for failure in result.failures:
        log.error("%s gate, hour %s: %s", result.gate, hour_label(hour_ms), failure)


def check_archive(settings: Settings, hour_ms: int) -> dict:
    """The archive-quality DAG's check of one hour: file integrity of the whole archive, then the raw
    expectations on the hour. Metrics are pushed whatever the outcome; raises QualityGateFailed on a failure."""
    integrity = archive.integrity(settings.archive_dir)
    push_gauges(
        settings,
        JOB,
        "twinlayer_archive_missing_files",
        "Committed archive files not on disk",
        {(): float(len(integrity["missing_files"]))},
        (),
        {"metric": "archive_missing"},
    )
    push_gauges(
        settings,
        JOB,
        "twinlayer_archive_orphan_files",
        "Archive files no commit lists",
        {(): float(len(integrity["orphan_files"]))},
        (),
        {"metric": "archive_orphans"},
    )
    if integrity["missing_files"]:
        raise QualityGateFailed("archive", [f"committed file missing: {p}" for p in integrity["missing_files"][:20]])
    result = gate_raw(settings, hour_ms, gate="archive", reconcile=False)
    return {**integrity, "orphan_files": len(integrity["orphan_files"]), **result.facts}
