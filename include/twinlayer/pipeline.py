"""The steps of the hourly recompute, as plain functions: the Airflow DAG only wires them.

Each step reads and writes only its hour, so Airflow's backfill can run any hours in any order. The Spark work
(``recompute``) runs in its own process — ``spark_jobs/batch_recompute.py`` through ``SparkSubmitOperator`` — and
leaves a run record (``state/batch/runs/<hour>.json``) that the next steps read.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from twinlayer import batch, hbase_store
from twinlayer.config import Settings
from twinlayer.metrics import push_gauges
from twinlayer.quality import GateResult, validate_raw, validate_version
from twinlayer.views import VIEWS, View, by_name, slot_name

log = logging.getLogger(__name__)
JOB = "twinlayer_batch"


CLOSE_GRACE_MS = 2 * 60 * 1000  # the speed layer's watermark and archive trigger, with room to spare


def hour_is_closed(settings: Settings, hour_end_ms: int, now_ms: int | None = None) -> bool:
    """True once no on-time event of the hour can still be on its way to the archive."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return now_ms >= hour_end_ms + CLOSE_GRACE_MS


def run_record_path(settings: Settings, hour_ms: int) -> Path:
    return settings.batch_dir / "runs" / f"{batch.hour_label(hour_ms)}.json"


def write_run_record(settings: Settings, result: batch.HourResult) -> None:
    path = run_record_path(settings, batch.hour_start(result.hour))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_dict()))


def read_run_record(settings: Settings, hour_ms: int) -> dict:
    path = run_record_path(settings, hour_ms)
    if not path.exists():
        raise FileNotFoundError(f"no run record for {batch.hour_label(hour_ms)} at {path}: did the recompute run?")
    return json.loads(path.read_text())


def _hour_keys_speed_total(settings: Settings, pool, hour_ms: int, view: View, measure: str, keys) -> int:
    total = 0
    for key in keys:
        for window in hbase_store.read_view(pool, settings.speed_table, view, key, hour_ms, hour_ms + batch.HOUR_MS):
            total += int(window.measures.get(measure, 0))
    return total


def speed_event_count(settings: Settings, pool, hour_ms: int) -> int:
    """Distinct events the speed layer counted for the hour (sum of the all-events count view over all keys)."""
    from twinlayer.events import EVENT_TYPES, campaign_ids

    view = by_name()["campaign_activity_1m"]
    keys = [f"{c}|{t}" for c in campaign_ids() for t in EVENT_TYPES]
    return _hour_keys_speed_total(settings, pool, hour_ms, view, "events", keys)


def gate_raw(settings: Settings, hour_ms: int, gate: str = "raw", reconcile: bool = True) -> GateResult:
    """Validate the archived hour; pushes the gate's metric whatever the outcome, raises on failure.
    ``reconcile``: also check that the archive holds at least what the speed layer counted."""
    from twinlayer.spark import session_scope

    with session_scope(f"twinlayer-gate-{gate}", settings) as spark:
        raw, version = batch.hour_events(spark, settings, hour_ms)
        if raw is None or version == 0:
            result = GateResult(gate, False, 0, ["the archive holds no event for this hour"], {"raw_rows": 0})
        else:
            speed = speed_event_count(settings, batch.batch_pool(settings, size=1), hour_ms) if reconcile else 0
            result = validate_raw(raw, hour_ms, speed or None, gate=gate)
    push_gate(settings, hour_ms, result)
    result.raise_if_failed()
    return result


def gate_version(settings: Settings, hour_ms: int, raw_facts: dict) -> GateResult:
    """Validate the version the recompute just wrote; ``facts["version"]`` names it, and is what publish must
    publish (another run of the same hour may write a newer run record meanwhile)."""
    import pandas as pd

    version = read_run_record(settings, hour_ms)["version"]
    snapshot = pd.read_parquet(batch.snapshot_path(settings, hour_ms, version))
    result = validate_version(snapshot, raw_facts)
    result.facts["version"] = version
    push_gate(settings, hour_ms, result)
    result.raise_if_failed()
    return result


def push_gate(settings: Settings, hour_ms: int, result: GateResult) -> None:
    push_gauges(settings, JOB, "twinlayer_batch_gate_last_run_timestamp_seconds", "When the gate last ran",
                {(result.gate,): time.time()}, ("gate",), {"gate": result.gate, "metric": "gate_last_run"})
    push_gauges(settings, JOB, "twinlayer_batch_gate_success", "1 when the last run of the quality gate passed",
                {(result.gate,): 1.0 if result.success else 0.0}, ("gate",), {"gate": result.gate})
    push_gauges(settings, JOB, "twinlayer_batch_gate_failed_expectations", "Expectations failed in the last run",
                {(result.gate,): float(len(result.failures))}, ("gate",), {"gate": result.gate, "metric": "gate_failures"})
    for failure in result.failures:
        log.error("%s gate, hour %s: %s", result.gate, batch.hour_label(hour_ms), failure)


def publish_hour(settings: Settings, hour_ms: int, version: int | None = None) -> dict:
    """Publish ``version`` (the one the view gate passed; by default the run record's)."""
    version = read_run_record(settings, hour_ms)["version"] if version is None else version
    pool = batch.batch_pool(settings, size=1)
    entry = batch.publish(pool, settings, hour_ms, version)
    push_boundary(settings, batch.boundary(batch.published(pool, settings)))
    return entry


def drift(batch_cells: dict[tuple[str, int], dict], speed_cells: dict[tuple[str, int], dict],
          view: View) -> dict[str, dict]:
    """Per count/sum measure: totals of both layers over the same windows and the relative gap
    sum(|batch - speed|) / sum(batch)."""
    report = {}
    for measure in view.measures:
        if measure.kind not in ("count", "sum"):
            continue
        cells = batch_cells.keys() | speed_cells.keys()
        batch_total = sum(batch_cells.get(c, {}).get(measure.name, 0) for c in cells)
        speed_total = sum(speed_cells.get(c, {}).get(measure.name, 0) for c in cells)
        gap = sum(abs(batch_cells.get(c, {}).get(measure.name, 0) - speed_cells.get(c, {}).get(measure.name, 0))
                  for c in cells)
        report[measure.name] = {"batch_total": batch_total, "speed_total": speed_total, "abs_diff": gap,
                                "ratio": gap / batch_total if batch_total else (0.0 if not gap else 1.0)}
    return report


def hour_drift(settings: Settings, hour_ms: int, views: tuple[View, ...] = VIEWS) -> dict[str, dict]:
    """Drift of every view between the published batch version and the speed layer, pushed as metrics."""
    import pandas as pd

    record = read_run_record(settings, hour_ms)
    snapshot = pd.read_parquet(batch.snapshot_path(settings, hour_ms, record["version"]))
    pool = batch.batch_pool(settings, size=1)
    reports, values, ratios, speed_seen = {}, {}, {}, False
    for view in views:
        rows = snapshot[snapshot["view"] == view.name]
        batch_cells = {(r["key"], int(r["window_start_ms"])): {m.name: r[slot_name(view, m)] for m in view.measures
                                                               if m.kind in ("count", "sum")}
                       for _, r in rows.iterrows()}
        speed_cells = {}
        for key in sorted(set(rows["key"])):
            for w in hbase_store.read_view(pool, settings.speed_table, view, key, hour_ms, hour_ms + batch.HOUR_MS):
                speed_cells[(key, w.window_start_ms)] = w.measures
        speed_seen = speed_seen or bool(speed_cells)
        reports[view.name] = drift(batch_cells, speed_cells, view)
        for measure, report in reports[view.name].items():
            ratios[(view.name, measure)] = report["ratio"]
            values[(view.name, measure)] = report["abs_diff"]
    if not speed_seen:
        # a recompute of an hour whose speed cells already expired (late data): there is nothing to compare,
        # and the drift measured when the hour was first published stands
        log.info("no speed cells for %s: drift not measured", batch.hour_label(hour_ms))
        return {}
    push_gauges(settings, JOB, "twinlayer_batch_drift_ratio",
                "sum(|batch - speed|) / sum(batch) over the windows of the last recomputed hour",
                ratios, ("view", "measure"), {"metric": "drift_ratio"})
    push_gauges(settings, JOB, "twinlayer_batch_drift_abs", "sum(|batch - speed|) over the last recomputed hour",
                values, ("view", "measure"), {"metric": "drift_abs"})
    return reports


def export_run_metrics(settings: Settings, hour_ms: int, seconds: float) -> None:
    record = read_run_record(settings, hour_ms)
    push_gauges(settings, JOB, "twinlayer_batch_rows_recomputed", "Archived rows read by the last recompute",
                {(): float(record["raw_rows"])}, (), {"metric": "rows"})
    push_gauges(settings, JOB, "twinlayer_batch_spark_seconds", "Spark time of the last recompute",
                {(): float(record["seconds"])}, (), {"metric": "spark_seconds"})
    push_gauges(settings, JOB, "twinlayer_batch_run_seconds", "Wall time of the last recompute run",
                {(): seconds}, (), {"metric": "run_seconds"})
    push_gauges(settings, JOB, "twinlayer_batch_last_success_timestamp_seconds",
                "When an hour was last recomputed and published", {(): time.time()}, (), {"metric": "last_success"})


def expire_speed_hour(settings: Settings, hour_ms: int, views: tuple[View, ...] = VIEWS) -> int:
    """Delete the speed cells of a published hour: serving answers it from the batch layer from now on."""
    import pandas as pd

    record = read_run_record(settings, hour_ms)
    snapshot = pd.read_parquet(batch.snapshot_path(settings, hour_ms, record["version"]), columns=["view", "key"])
    pool = batch.batch_pool(settings, size=1)
    deleted = 0
    with pool.connection() as conn:
        table = conn.table(settings.speed_table)
        for view in views:
            for key in sorted(set(snapshot[snapshot["view"] == view.name]["key"])):
                prefix = hbase_store.row_prefix(view.name, key)
                start = prefix + f"{hour_ms:013d}".encode()
                stop = prefix + f"{hour_ms + batch.HOUR_MS:013d}".encode()
                rows = [row for row, _ in table.scan(row_start=start, row_stop=stop, columns=[b"m:_batch"])]
                with table.batch() as b:
                    for row in rows:
                        b.delete(row)
                deleted += len(rows)
    return deleted


# --- the archive against what was recomputed: late data, integrity, state metrics --------------------------------


UNPUBLISHED_GRACE_MS = batch.HOUR_MS  # an hour never published is the hourly run's to do first
LOOKBACK_MS = 7 * 24 * batch.HOUR_MS  # older hours are for an explicit backfill


def late_hours(settings: Settings, now_ms: int | None = None, counts: dict[str, int] | None = None,
               publications: dict[int, dict] | None = None) -> list[dict]:
    """Closed hours whose archive holds more records than their published version read: events arrived after the
    hour was recomputed (or, for an hour never published, after its hourly run found it empty or failed). Oldest
    first, each {"hour", "hour_ms", "published", "archived"}; "published" is 0 for an hour never published, which
    counts only once its hourly run has had an hour to do it. Hours older than a week are left to backfills."""
    from twinlayer.archive import hour_counts

    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    counts = hour_counts(settings.archive_dir) if counts is None else counts
    if publications is None:
        publications = batch.published(batch.batch_pool(settings, size=1), settings)
    stale = []
    for label, archived in sorted(counts.items()):
        hour_ms = batch.hour_start(label)
        entry = publications.get(hour_ms)
        grace = CLOSE_GRACE_MS if entry else UNPUBLISHED_GRACE_MS
        if now_ms - LOOKBACK_MS <= hour_ms and now_ms >= hour_ms + batch.HOUR_MS + grace:
            version = entry["version"] if entry else 0
            if archived > version:
                stale.append({"hour": label, "hour_ms": hour_ms, "published": version, "archived": archived})
    return stale


def recompute_requests(stale: list[dict], now_ms: int | None = None) -> list[dict]:
    """One run request of the recompute DAG per late hour. Its data interval is the hour, inferred by the DAG's
    timetable from ``run_after`` (the hour's end); its logical date is the request time (a run for the hour's own
    logical date may exist already, and logical dates are unique per DAG). The run id names the archived count,
    so a second request for the same state of the archive is recognised as a duplicate."""
    import datetime as dt

    def iso(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat()

    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return [{"trigger_run_id": f"late__{item['hour']}__{item['archived']}", "logical_date": iso(now_ms + i),
             "run_after": iso(item["hour_ms"] + batch.HOUR_MS)} for i, item in enumerate(stale)]


ORPHAN_AFTER_S = 600


def archive_integrity(settings: Settings) -> dict:
    """Committed files that are missing (the batch layer would fail on them) and files on disk no commit lists
    (left by a micro-batch that crashed before its commit: harmless, never read)."""
    from twinlayer.archive import committed_files
    from twinlayer.speed import archive_epochs

    missing, orphans, committed_count = [], [], 0
    settled = time.time() - ORPHAN_AFTER_S  # younger files may belong to a micro-batch about to commit
    for epoch in archive_epochs(settings.archive_dir):
        committed = set(committed_files(epoch))
        committed_count += len(committed)
        missing += [str(p) for p in committed if not p.exists()]
        orphans += [str(p) for p in epoch.glob("event_hour=*/*.parquet")
                    if p not in committed and p.stat().st_mtime < settled]
    return {"committed_files": committed_count, "missing_files": sorted(missing), "orphan_files": sorted(orphans)}


def check_archive(settings: Settings, hour_ms: int) -> dict:
    """The archive-quality DAG's check of one hour: file integrity of the whole archive, then the raw
    expectations on the hour. Metrics are pushed whatever the outcome; raises QualityGateFailed on a failure."""
    from twinlayer.quality import QualityGateFailed

    integrity = archive_integrity(settings)
    push_gauges(settings, JOB, "twinlayer_archive_missing_files", "Committed archive files not on disk",
                {(): float(len(integrity["missing_files"]))}, (), {"metric": "archive_missing"})
    push_gauges(settings, JOB, "twinlayer_archive_orphan_files", "Archive files no commit lists",
                {(): float(len(integrity["orphan_files"]))}, (), {"metric": "archive_orphans"})
    if integrity["missing_files"]:
        raise QualityGateFailed("archive", [f"committed file missing: {p}" for p in integrity["missing_files"][:20]])
    result = gate_raw(settings, hour_ms, gate="archive", reconcile=False)
    return {**integrity, "orphan_files": len(integrity["orphan_files"]), **result.facts}


def export_state_metrics(settings: Settings, now_ms: int | None = None) -> dict:
    """What the archive and the batch layer hold right now, for the lambda overview: archived records, published
    hours and boundary, hours with late events not yet recomputed and how many records they miss."""
    from twinlayer.archive import hour_counts

    counts = hour_counts(settings.archive_dir)
    publications = batch.published(batch.batch_pool(settings, size=1), settings)
    stale = late_hours(settings, now_ms, counts, publications)
    state = {"archive_records": sum(counts.values()), "archive_hours": len(counts),
             "published_hours": len(publications), "late_hours": len(stale),
             "late_records": sum(s["archived"] - s["published"] for s in stale),
             "boundary_ms": batch.boundary(publications)}
    gauges = {
        "twinlayer_archive_records": ("Records in the master dataset", state["archive_records"]),
        "twinlayer_archive_hours": ("Hours the master dataset holds records of", state["archive_hours"]),
        "twinlayer_batch_published_hours": ("Hours with a published batch version", state["published_hours"]),
        "twinlayer_batch_late_hours": ("Closed hours whose archive holds more than their published version",
                                       state["late_hours"]),
        "twinlayer_batch_late_records": ("Archived records not yet in a published version", state["late_records"]),
    }
    for metric, (doc, value) in gauges.items():
        push_gauges(settings, JOB, metric, doc, {(): float(value)}, (), {"metric": metric.removeprefix("twinlayer_")})
    if state["boundary_ms"] is not None:
        push_boundary(settings, state["boundary_ms"])
    return state


def push_boundary(settings: Settings, boundary_ms: int) -> None:
    push_gauges(settings, JOB, "twinlayer_batch_boundary_timestamp_seconds",
                "End of the newest published hour: the serving layer's time boundary",
                {(): boundary_ms / 1000}, (), {"metric": "boundary"})
