"""Watchdog verdicts, the serving merge and the drift arithmetic (pure logic)."""

from prometheus_client import generate_latest

from twinlayer.batch.drift import drift
from twinlayer.model.hours import HOUR_MS
from twinlayer.model.views import by_name
from twinlayer.ops.watchdog import assess
from twinlayer.serving.merge import merge
from twinlayer.speed.metrics import SpeedMetrics
from twinlayer.storage.hbase import WindowValue

NOW = 1_790_000_000.0


def metrics_text(active=("views", "ingest"), progress_age=5.0):
    metrics = SpeedMetrics()
    for query in ("views", "ingest"):
        metrics.active.labels(query).set(1 if query in active else 0)
        metrics.last_progress.labels(query).set(NOW - progress_age)
    return generate_latest(metrics.registry).decode()


def test_watchdog_verdicts():
    assert assess(metrics_text(), NOW) is None
    assert "query ingest is not running" in assess(metrics_text(active=("views",)), NOW)
    assert "last reported progress 300s ago" in assess(metrics_text(progress_age=300), NOW)
    assert "does not answer" in assess(None, NOW)


def test_merge_takes_batch_for_published_hours_and_speed_after():
    view = by_name()["campaign_views_10s"]
    h0 = 1_789_999_200_000  # a whole hour
    batch_rows = {h0: [WindowValue(h0, h0 + 10_000, {"views": 7}, 1234)]}
    speed_rows = [
        WindowValue(h0, h0 + 10_000, {"views": 5}, 3),  # shadowed by the published hour
        WindowValue(h0 + HOUR_MS, h0 + HOUR_MS + 10_000, {"views": 2}, 9),
    ]
    merged = merge(view, {h0: {"version": 1234}}, batch_rows, speed_rows)
    assert [(w["window_start_ms"], w["source"], w["views"], w["version"]) for w in merged] == [
        (h0, "batch", 7, 1234),
        (h0 + HOUR_MS, "speed", 2, None),
    ]


def test_drift_counts_missing_cells_on_either_side():
    view = by_name()["campaign_views_10s"]
    report = drift(
        {("a", 0): {"views": 10}, ("b", 0): {"views": 5}}, {("a", 0): {"views": 8}, ("c", 0): {"views": 1}}, view
    )
    assert report == {"views": {"batch_total": 15, "speed_total": 9, "abs_diff": 2 + 5 + 1, "ratio": 8 / 15}}
