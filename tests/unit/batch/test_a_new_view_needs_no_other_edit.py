"""Adding a view is adding a ``View``: with a third view beside the two of ``VIEWS``, the raw and version gates,
the drift and the serving merge handle it with no other edit (nothing in them names a view). Local Spark and
pure functions; no services."""

import datetime as dt

import pytest

from twinlayer.batch.drift import drift
from twinlayer.batch.quality import validate_raw, validate_version
from twinlayer.batch.recompute import exact_events
from twinlayer.localstack.generator import EventFactory, Workload
from twinlayer.model.hours import HOUR_MS
from twinlayer.model.views import (
    VIEWS,
    Measure,
    View,
    aggregate,
    event_count,
    slot_name,
)
from twinlayer.serving.merge import merge
from twinlayer.speed.parse import campaign_mapping, parse_events, valid_events
from twinlayer.storage.hbase import decode_row, view_mutations

HOUR = 1_790_002_800_000  # a whole UTC hour
PURCHASES = View(
    name="purchases_per_ad_type_1m",
    dimensions=("ad_type",),
    window_seconds=60,
    filter="event_type = 'purchase'",
    measures=(
        Measure("purchases", "count"),
        Measure("buyers", "distinct", "user_id"),
        Measure("last_purchase_ms", "max", "event_time_ms"),
    ),
)
THREE = (*VIEWS, PURCHASES)


@pytest.fixture(scope="module")
def raw(spark):
    """Archived records of one hour: 3,000 events, 5% re-sent duplicates."""
    ticks = iter(range(10**6))
    factory = EventFactory(
        Workload(rate=0, count=3000, duplicate_fraction=0.05, seed=7), clock=lambda: HOUR + next(ticks) * 1000
    )
    kafka_ts = dt.datetime.fromtimestamp((HOUR + HOUR_MS) / 1000, dt.UTC)
    rows = [(factory.next_payload().decode(), 0, i, kafka_ts) for i in range(3000)]
    frame = spark.createDataFrame(rows, "value string, partition int, offset long, timestamp timestamp")
    return valid_events(parse_events(frame, campaign_mapping(spark))).cache()


@pytest.fixture(scope="module")
def gated(raw):
    raw_result = validate_raw(raw, HOUR, speed_events=None, views=THREE)
    snapshot = aggregate(exact_events(raw), THREE, exact=True).toPandas()
    return raw_result, snapshot


def test_both_gates_pass_and_reconcile_the_new_view(raw, gated):
    raw_result, snapshot = gated
    assert raw_result.success, raw_result.failures
    purchases = raw.where("event_type = 'purchase'").select("event_id").distinct().count()
    assert raw_result.facts["view_events"][PURCHASES.name] == purchases > 0
    version = validate_version(snapshot, raw_result.facts, THREE)
    assert version.success, version.failures
    assert version.facts["reconciliation"][f"{PURCHASES.name}.purchases"] == (purchases, purchases)


def test_the_version_gate_catches_a_missing_window_of_the_new_view(gated):
    raw_result, snapshot = gated
    rows = snapshot.index[snapshot["view"] == PURCHASES.name]
    damaged = snapshot.drop(rows[:1])
    result = validate_version(damaged, raw_result.facts, THREE)
    assert not result.success
    assert any(f.startswith(f"reconciliation {PURCHASES.name}.purchases") for f in result.failures), result.failures


def test_the_speed_layers_event_count_does_not_depend_on_the_new_view():
    assert event_count(THREE) == event_count(VIEWS)
    view, measure = event_count(VIEWS)
    assert view.filter is None and measure.kind == "count"


def test_drift_and_serving_merge_the_new_view(gated):
    _, snapshot = gated
    rows = snapshot[snapshot["view"] == PURCHASES.name].to_dict("records")
    key = rows[0]["key"]
    mutations = view_mutations([r for r in rows if r["key"] == key], batch_id=3000, views=THREE, exact=True)
    batch_windows = [decode_row(PURCHASES, m.row, m.columns) for m in mutations]
    speed_windows = batch_windows[:-1]  # the speed layer missed a window (a late event, say)
    column = slot_name(PURCHASES, PURCHASES.measure("purchases"))
    cells = {(r["key"], r["window_start_ms"]): {"purchases": r[column]} for r in rows if r["key"] == key}
    speed_cells = {(key, w.window_start_ms): {"purchases": w.measures["purchases"]} for w in speed_windows}
    report = drift(cells, speed_cells, PURCHASES)
    assert report["purchases"]["abs_diff"] == batch_windows[-1].measures["purchases"] > 0

    published = {HOUR: {"version": 3000, "previous": []}}
    later = [
        w._replace(window_start_ms=w.window_start_ms + HOUR_MS, window_end_ms=w.window_end_ms + HOUR_MS)
        for w in speed_windows
    ]
    answer = merge(PURCHASES, published, {HOUR: batch_windows}, speed_windows + later)
    assert [w["source"] for w in answer] == ["batch"] * len(batch_windows) + ["speed"] * len(later)
    assert all(w["exact"] and w["version"] == 3000 for w in answer[: len(batch_windows)])
    assert sum(w["purchases"] for w in answer[: len(batch_windows)]) == sum(r[column] for r in rows if r["key"] == key)
