"""The view definitions and event parsing on small hand-written DataFrames (local Spark, no services)."""

import datetime as dt
import json
import random

import pytest
from datasketches import hll_sketch, hll_union
from pyspark.testing import assertDataFrameEqual

from twinlayer.model import events as ev
from twinlayer.model.views import (
    HLL_LG_K,
    VIEWS,
    Measure,
    View,
    aggregate,
    by_name,
    by_stored_name,
    slot_name,
)
from twinlayer.speed.parse import (
    campaign_mapping,
    dead_letters,
    parse_events,
    valid_events,
)
from twinlayer.storage.hbase import (
    decode_row,
    parse_row_key,
    row_key,
    sketch_estimate,
    view_mutations,
)

ADS = sorted(ev.ad_campaigns().items())
(AD_A, CAMP_A), (AD_B, CAMP_B) = ADS[0], ADS[-1]
T0 = 1_789_999_980_000  # a whole minute, in ms


def event(i, ad, event_type, t_ms, user="u1", **overrides):
    record = {
        "event_id": f"e{i}",
        "user_id": user,
        "page_id": "p1",
        "ad_id": ad,
        "ad_type": "banner",
        "event_type": event_type,
        "event_time": t_ms,
        "ip_address": "10.0.0.1",
    }
    record.update(overrides)
    return record


def raw_frame(spark, payloads, kafka_ms=T0):
    rows = [
        (p if isinstance(p, str) else json.dumps(p), 0, i, dt.datetime.fromtimestamp(kafka_ms / 1000, dt.UTC))
        for i, p in enumerate(payloads)
    ]
    return spark.createDataFrame(rows, "value string, partition int, offset long, timestamp timestamp")


@pytest.fixture(scope="module")
def mapping(spark):
    return campaign_mapping(spark)


def test_parse_sorts_valid_events_from_each_kind_of_bad_record(spark, mapping):
    good = event(1, AD_A, "view", T0 + 1500)
    no_user = {k: v for k, v in event(2, AD_A, "view", T0).items() if k != "user_id"}
    payloads = [
        good,
        "{not json",
        "[1, 2, 3]",
        no_user,
        event(3, AD_A, "view", T0, user=None),
        event(4, AD_A, "view", "yesterday"),
        event(5, AD_A, "look", T0),
        event(6, "no-such-ad", "view", T0),
        event(7, AD_A, "view", T0 - ev.MAX_AGE_MS - 1),
        event(8, AD_A, "view", T0 + ev.MAX_FUTURE_MS + 1),
        event(9, AD_A, "view", T0, page_id="x" * (ev.MAX_PAYLOAD_BYTES + 1)),
    ]
    parsed = parse_events(raw_frame(spark, payloads), mapping).cache()
    reasons = {r.kafka_offset: r.error for r in dead_letters(parsed).collect()}
    assert reasons == {
        1: ev.REASON_MALFORMED,
        2: ev.REASON_NOT_OBJECT,
        3: "missing_field:user_id",
        4: "missing_field:user_id",
        5: "wrong_type:event_time",
        6: "bad_value:event_type",
        7: ev.REASON_UNKNOWN_AD,
        8: ev.REASON_TOO_OLD,
        9: ev.REASON_IN_FUTURE,
        10: ev.REASON_TOO_LARGE,
    }
    valid = valid_events(parsed).collect()
    assert len(valid) == 1
    assert valid[0].event_id == "e1" and valid[0].campaign_id == CAMP_A and valid[0].event_time_ms == T0 + 1500
    letter = dead_letters(parsed).where("kafka_offset = 1").first()
    assert letter.payload == "{not json"


def test_each_view_on_hand_written_events(spark, mapping):
    payloads = [
        event(1, AD_A, "view", T0 + 1_000, user="u1"),
        event(2, AD_A, "view", T0 + 9_999, user="u2"),
        event(3, AD_A, "click", T0 + 5_000, user="u1"),
        event(4, AD_A, "view", T0 + 10_000, user="u1"),  # next 10 s window, same minute
        event(5, AD_B, "view", T0 + 61_000, user="u3"),  # next minute
    ]
    events = valid_events(parse_events(raw_frame(spark, payloads, kafka_ms=T0 + 60_000), mapping))
    result = aggregate(events).cache()

    ysb = by_name()["campaign_views_10s"]
    got = result.where("view = 'campaign_views_10s'").select(
        "key", "window_start_ms", "window_end_ms", slot_name(ysb, ysb.measure("views"))
    )
    expected = spark.createDataFrame(
        [(CAMP_A, T0, T0 + 10_000, 2), (CAMP_A, T0 + 10_000, T0 + 20_000, 1), (CAMP_B, T0 + 60_000, T0 + 70_000, 1)],
        got.schema,
    )
    assertDataFrameEqual(got, expected)

    act = by_name()["campaign_activity_1m"]
    cols = [slot_name(act, act.measure(m)) for m in ("events", "first_event_ms", "last_event_ms")]
    got = result.where("view = 'campaign_activity_1m'").select("key", "window_start_ms", *cols)
    expected = spark.createDataFrame(
        [
            (f"{CAMP_A}|view", T0, 3, T0 + 1_000, T0 + 10_000),
            (f"{CAMP_A}|click", T0, 1, T0 + 5_000, T0 + 5_000),
            (f"{CAMP_B}|view", T0 + 60_000, 1, T0 + 61_000, T0 + 61_000),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, expected)

    users = {
        r.key: r[slot_name(act, act.measure("users"))] for r in result.where("view = 'campaign_activity_1m'").collect()
    }
    assert round(sketch_estimate(users[f"{CAMP_A}|view"])) == 2
    union = hll_union(HLL_LG_K)
    for sketch in users.values():
        union.update(hll_sketch.deserialize(sketch))
    assert round(union.get_estimate()) == 3  # sketches of windows merge: the serving layer may add them


def test_exact_distinct_beside_the_sketch(spark, mapping):
    payloads = [event(i, AD_A, "view", T0 + i, user=f"u{i % 5}") for i in range(40)]
    events = valid_events(parse_events(raw_frame(spark, payloads), mapping))
    act = by_name()["campaign_activity_1m"]
    row = aggregate(events, [act], exact=True).first()
    assert row[slot_name(act, act.measure("users")) + "__exact"] == 5
    assert round(sketch_estimate(row[slot_name(act, act.measure("users"))])) == 5


def test_exact_counts_of_every_view_join_the_rows_they_belong_to(spark, mapping):
    payloads = [event(i, ADS[i % 4][0], ev.EVENT_TYPES[i % 3], T0 + i * 900, user=f"u{i % 7}") for i in range(120)]
    events = valid_events(parse_events(raw_frame(spark, payloads, T0 + 200_000), mapping))
    plain, exact = aggregate(events, VIEWS), aggregate(events, VIEWS, exact=True)
    distinct = [(v, m) for v in VIEWS for m in v.measures if m.kind == "distinct"]
    expected_columns = [
        name
        for column in plain.columns
        for name in (column, *(f"{column}__exact" for v, m in distinct if slot_name(v, m) == column))
    ]
    assert exact.columns == expected_columns
    assert all(not exact.schema[f"{slot_name(v, m)}__exact"].nullable for v, m in distinct)
    assertDataFrameEqual(exact.select(*plain.columns), plain)
    rows = exact.collect()
    for view, measure in distinct:
        column = slot_name(view, measure)
        own = [row for row in rows if row["view"] == view.name]
        assert own and all(row[f"{column}__exact"] == 0 for row in rows if row["view"] != view.name)
        # at most seven users a window: the sketch is still in its exact (list) mode
        assert all(row[f"{column}__exact"] == round(sketch_estimate(row[column])) > 0 for row in own)


def test_mutations_are_deterministic_under_shuffled_input(spark, mapping):
    payloads = [event(i, ADS[i % 30][0], ev.EVENT_TYPES[i % 3], T0 + i * 700, user=f"u{i % 11}") for i in range(300)]
    rows = aggregate(valid_events(parse_events(raw_frame(spark, payloads, T0 + 200_000), mapping))).collect()
    first = view_mutations(rows, batch_id=7)
    for seed in range(3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        assert view_mutations(shuffled, batch_id=7) == first
    assert len({m.row for m in first}) == len(rows)
    for mutation in first:
        stored, _, start = parse_row_key(mutation.row)
        assert mutation.timestamp == start and start % by_stored_name()[stored].window_ms == 0
        assert mutation.columns[b"m:_batch"] == b"7"
        decoded = decode_row(by_stored_name()[stored], mutation.row, mutation.columns)
        assert decoded.window_start_ms == start and decoded.batch == 7


def test_row_keys_of_one_view_and_key_sort_by_window():
    keys = [row_key("v", "k|x", t) for t in (5, 10_000, 1_790_000_000_000)]
    assert keys == sorted(keys)
    assert parse_row_key(keys[1]) == ("v", "k|x", 10_000)


def test_view_definitions_are_validated():
    with pytest.raises(ValueError, match="count takes no column"):
        Measure("n", "count", "user_id")
    with pytest.raises(ValueError, match="unknown kind"):
        Measure("n", "median", "user_id")
    with pytest.raises(ValueError, match="window_seconds"):
        View("v", ("campaign_id",), 0, (Measure("n", "count"),))
    assert len({v.name for v in VIEWS}) == len(VIEWS)
