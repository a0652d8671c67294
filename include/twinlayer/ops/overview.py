"""What the Lambda page shows: per hour of the last days, both layers side by side.

For each hour: the records the archive holds, the batch version serving it and the ones kept for rollback, the
latest result of each gate that ran on it (raw, view, archive), the drift measured at its latest recompute that
found speed cells (and of which version), the records waiting for a late recompute, and whether the speed layer
still holds its cells (one short scan of one key the batch version holds); then the time boundary and the speed
layer's lag and freshness as Prometheus records them. Reads the archive's commit records, HBase and Prometheus; no
Spark, no Airflow, so the page and the tests read the same facts.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import requests

from twinlayer.batch.late import late_hours
from twinlayer.batch.publish import boundary, definition_matches, published
from twinlayer.batch.recompute import snapshot_path
from twinlayer.batch.runs import hour_facts
from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS, floor_hour, hour_label, hour_start
from twinlayer.model.views import VIEWS
from twinlayer.storage import archive
from twinlayer.storage import hbase as hbase_store

SPEED_QUERIES = {
    "kafka_lag_records": "twinlayer:speed_kafka_lag_records:sum",
    "freshness_p50_seconds": "twinlayer:speed_freshness_seconds:p50_5m",
    "freshness_p99_seconds": "twinlayer:speed_freshness_seconds:p99_5m",
    "boundary_lag_seconds": "twinlayer:batch_boundary_lag_seconds",
}


@dataclasses.dataclass
class HourRow:
    hour: str
    hour_ms: int
    archived: int
    source: str  # which layer serving answers the hour from
    version: int | None = None
    previous: list[int] = dataclasses.field(default_factory=list)
    published_ms: int | None = None
    rolled_back_from: int | None = None
    late_records: int = 0
    gates: dict[str, dict] = dataclasses.field(default_factory=dict)
    drift: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    drift_version: int | None = None  # the version the drift was measured on
    speed_cells: bool | None = None  # None: not probed (an unpublished hour is served by the speed layer)


def _speed_holds_cells(settings: Settings, pool, hour_ms: int, entry: dict) -> bool | None:
    """Whether the speed table still holds windows of the hour, probed with one key of the published version."""
    import pyarrow.parquet as pq

    path = snapshot_path(settings, hour_ms, entry["version"], entry.get("views"))
    if not path.exists():
        return None
    view = VIEWS[0]
    table = pq.read_table(path, columns=["view", "key"], filters=[("view", "=", view.name)])
    if table.num_rows == 0:
        return None
    key = table.column("key")[0].as_py()
    return bool(hbase_store.read_view(pool, settings.speed_table, view, key, hour_ms, hour_ms + HOUR_MS))


def _source(entry: dict | None) -> str:
    """Which layer serving answers an hour from: the batch layer for the views whose definitions the published
    version was computed with, the speed layer for the others."""
    other = [view.name for view in VIEWS if entry is None or not definition_matches(entry, view)]
    if not other:
        return "batch"
    if entry is None or len(other) == len(VIEWS):
        return "speed" if entry is None else "speed (the published version has other view definitions)"
    return f"batch; speed for {', '.join(other)} (changed since)"


def hour_rows(
    settings: Settings,
    days: int = 2,
    now_ms: int | None = None,
    pool=None,
    publications: dict | None = None,
    hours: list[int] | None = None,
) -> list[HourRow]:
    """The last ``days`` days' hours (or just ``hours``) that the archive or the batch layer knows, newest first."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    pool = pool or hbase_store.pool_for(settings, size=1)
    since = floor_hour(now_ms) - days * 24 * HOUR_MS
    counts = archive.hour_counts(settings.archive_dir)
    publications = published(pool, settings) if publications is None else publications
    late = {item["hour"]: item for item in late_hours(settings, now_ms, counts, publications)}
    known = {hour_start(label) for label in counts} | set(publications)
    chosen = known & set(hours) if hours is not None else {h for h in known if h >= since}
    rows = []
    for hour_ms in sorted(chosen, reverse=True):
        label = hour_label(hour_ms)
        entry = publications.get(hour_ms)
        facts = hour_facts(settings, hour_ms)
        row = HourRow(label, hour_ms, counts.get(label, 0), _source(entry))
        if entry:
            row.version, row.previous = entry["version"], entry["previous"]
            row.published_ms, row.rolled_back_from = entry.get("published_ms"), entry.get("rolled_back_from")
            row.speed_cells = _speed_holds_cells(settings, pool, hour_ms, entry)
        if label in late:
            row.late_records = late[label]["archived"] - late[label]["published"]
        row.gates = {name.removeprefix("gate_"): fact for name, fact in facts.items() if name.startswith("gate_")}
        if "drift" in facts:
            row.drift_version = facts["drift"]["version"]
            row.drift = {
                view: {measure: report["ratio"] for measure, report in measures.items()}
                for view, measures in facts["drift"]["views"].items()
            }
        rows.append(row)
    return rows


def speed_status(settings: Settings, timeout: float = 2.0) -> dict[str, float | None]:
    """The speed layer's lag and freshness (and the batch boundary's lag) as Prometheus records them; None for a
    figure Prometheus has no sample of, or when it does not answer."""
    status: dict[str, float | None] = {}
    for name, query in SPEED_QUERIES.items():
        try:
            response = requests.get(
                f"{settings.url('prometheus_port')}/api/v1/query", params={"query": query}, timeout=timeout
            )
            result = response.json()["data"]["result"] if response.ok else []
        except (requests.RequestException, ValueError, KeyError):
            result = []
        value = float(result[0]["value"][1]) if result else math.nan
        status[name] = None if math.isnan(value) else value  # NaN: a quantile over no samples
    return status


def overview(settings: Settings, days: int = 2, now_ms: int | None = None, pool=None) -> dict[str, Any]:
    pool = pool or hbase_store.pool_for(settings, size=1)
    publications = published(pool, settings)
    rows = hour_rows(settings, days, now_ms, pool, publications)
    return {
        "boundary_ms": boundary(publications),
        "speed": speed_status(settings),
        "views": [view.name for view in VIEWS],
        "hours": [dataclasses.asdict(row) for row in rows],
    }
