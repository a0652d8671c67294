"""The gap between the layers: how far the speed layer's views of an hour are from the batch layer's exact ones."""

from __future__ import annotations

import logging
from typing import Any

from twinlayer.batch.recompute import snapshot_path
from twinlayer.batch.report import JOB
from twinlayer.batch.runs import read_run_record, record_hour_fact
from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.model.views import VIEWS, View, slot_name
from twinlayer.runtime.pushgateway import push_gauges
from twinlayer.storage import hbase as hbase_store

log = logging.getLogger(__name__)


def drift(
    batch_cells: dict[tuple[str, int], dict], speed_cells: dict[tuple[str, int], dict], view: View
) -> dict[str, dict]:
    """Per count/sum measure: totals of both layers over the same windows and the relative gap
    sum(|batch - speed|) / sum(batch)."""
    report = {}
    for measure in view.measures:
        if measure.kind not in ("count", "sum"):
            continue
        cells = batch_cells.keys() | speed_cells.keys()
        batch_total = sum(batch_cells.get(c, {}).get(measure.name, 0) for c in cells)
        speed_total = sum(speed_cells.get(c, {}).get(measure.name, 0) for c in cells)
        gap = sum(
            abs(batch_cells.get(c, {}).get(measure.name, 0) - speed_cells.get(c, {}).get(measure.name, 0))
            for c in cells
        )
        report[measure.name] = {
            "batch_total": batch_total,
            "speed_total": speed_total,
            "abs_diff": gap,
            "ratio": gap / batch_total if batch_total else (0.0 if not gap else 1.0),
        }
    return report


def hour_drift(settings: Settings, hour_ms: int, views: tuple[View, ...] = VIEWS) -> dict[str, dict]:
    """Drift of every view between the published batch version and the speed layer, pushed as metrics."""
    import pandas as pd

    record = read_run_record(settings, hour_ms)
    snapshot = pd.read_parquet(snapshot_path(settings, hour_ms, record["version"], record.get("views")))
    pool = hbase_store.pool_for(settings, size=1)
    reports: dict[str, dict[str, Any]] = {}
    values: dict[tuple[str, ...], float] = {}
    ratios: dict[tuple[str, ...], float] = {}
    speed_seen = False
    for view in views:
        rows = snapshot[snapshot["view"] == view.name]
        batch_cells = {
            (r["key"], int(r["window_start_ms"])): {
                m.name: r[slot_name(view, m)] for m in view.measures if m.kind in ("count", "sum")
            }
            for _, r in rows.iterrows()
        }
        speed_cells = {}
        for key in sorted(set(rows["key"])):
            for w in hbase_store.read_view(pool, settings.speed_table, view, key, hour_ms, hour_ms + HOUR_MS):
                speed_cells[(key, w.window_start_ms)] = w.measures
        if not speed_cells:
            # none at all for this view: its definition is newer than the hour's speed cells (the speed layer rebuilt
            # later hours only), or the TTL retired them; nothing to compare
            log.info("no speed cells of %s for %s: its drift is not measured", view.stored_name, hour_label(hour_ms))
            continue
        speed_seen = True
        reports[view.name] = drift(batch_cells, speed_cells, view)
        for measure, report in reports[view.name].items():
            ratios[(view.name, measure)] = report["ratio"]
            values[(view.name, measure)] = report["abs_diff"]
    if not speed_seen:
        # a recompute of an hour whose speed cells the table's TTL retired: there is nothing to compare, and the
        # drift measured when the hour was last recomputed stands
        log.info("no speed cells for %s: drift not measured", hour_label(hour_ms))
        return {}
    record_hour_fact(settings, hour_ms, "drift", {"version": record["version"], "views": reports})
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_drift_ratio",
        "sum(|batch - speed|) / sum(batch) over the windows of the last recomputed hour",
        ratios,
        ("view", "measure"),
        {"metric": "drift_ratio"},
    )
    push_gauges(
        settings,
        JOB,
        "twinlayer_batch_drift_abs",
        "sum(|batch - speed|) over the last recomputed hour",
        values,
        ("view", "measure"),
        {"metric": "drift_abs"},
    )
    return reports
