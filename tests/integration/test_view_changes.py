"""Views that evolve, on the real stack: a third view is added and a window of an existing one changed while hours
are published; the speed layer restarts with the new definitions without an operator step and rebuilds its views
of the unpublished hours from Kafka; a backfill publishes the new definitions for the published hour; every answer
equals brute force; a replay leaves byte-identical cells; the archive never sees a record twice."""

import dataclasses
import json
import time

import happybase
from kafka import KafkaProducer

from tests import truth
from tests.speed_checks import assert_cells_match, speed_cells, wait_until_caught_up
from twinlayer.batch import gates, publish, recompute, runs
from twinlayer.batch.quality import validate_raw
from twinlayer.cli import main as cli
from twinlayer.model import events as ev
from twinlayer.model.events import MAX_FUTURE_MS
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.model.view_files import load_views
from twinlayer.model.views import VIEWS, fingerprints, views_fingerprint
from twinlayer.serving.merge import Server
from twinlayer.speed import rebuild
from twinlayer.storage.archive import read as read_archive

NEW_VIEWS = """
[[view]]
name = "campaign_views_10s"
dimensions = ["campaign_id"]
window_seconds = 20  # changed from 10
filter = "event_type = 'view'"
measures = [{name = "views", kind = "count"}]

[[view]]
name = "campaign_activity_1m"
dimensions = ["campaign_id", "event_type"]
window_seconds = 60
measures = [
  {name = "events", kind = "count"},
  {name = "users", kind = "distinct", column = "user_id"},
  {name = "first_event_ms", kind = "min", column = "event_time_ms"},
  {name = "last_event_ms", kind = "max", column = "event_time_ms"},
]

[[view]]
name = "purchases_by_ad_type_1m"
dimensions = ["ad_type"]
window_seconds = 60
filter = "event_type = 'purchase'"
measures = [{name = "purchases", kind = "count"}, {name = "buyers", kind = "distinct", column = "user_id"}]
"""
EVENTS_PER_HOUR = 3000
RESENT = 60


def send(settings, topic, events):
    """Each event with its event time as Kafka's record time, as a producer at the source would stamp it."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    try:
        for event in events:
            producer.send(topic, json.dumps(event).encode(), timestamp_ms=event["event_time"])
        producer.flush()
    finally:
        producer.close()


def hour_of_events(hour_ms, first_id):
    ads = sorted(ev.ad_campaigns())
    step = (HOUR_MS - 1000) // EVENTS_PER_HOUR
    return [
        {
            "event_id": f"e{first_id + i}",
            "user_id": f"u{(first_id + i) % 53}",
            "page_id": "p1",
            "ad_id": ads[(i * 7) % len(ads)],
            "ad_type": ev.AD_TYPES[i % len(ev.AD_TYPES)],
            "event_type": ev.EVENT_TYPES[(i // 2) % len(ev.EVENT_TYPES)],
            "event_time": hour_ms + i * step,
            "ip_address": "10.0.0.1",
        }
        for i in range(EVENTS_PER_HOUR)
    ]


def truth_of(events, views, first_ms, end_ms):
    """Brute force over ``events`` (first received wins), for windows starting in [first_ms, end_ms)."""
    campaigns = ev.ad_campaigns()
    cells = truth.view_cells(truth.dedupe_first([{**e, "campaign_id": campaigns[e["ad_id"]]} for e in events]), views)
    return {cell: value for cell, value in cells.items() if first_ms <= cell[2] < end_ms}


def served(server, views, cells, first_ms, end_ms):
    """(view, key, window start) -> the served window, for every key of ``cells``; view -> its other-definition
    hours."""
    answers, others = {}, {}
    for view in views:
        for key in sorted({key for name, key, _ in cells if name == view.name}):
            answer = server.query(view, key, first_ms, end_ms).as_dict()
            others[view.name] = answer["other_definition_hours"]
            assert answer["fingerprint"] == view.fingerprint
            for window in answer["windows"]:
                answers[(view.name, key, window["window_start_ms"])] = window
    return answers, others


def assert_served_equals(answers, expected, source, exact):
    chosen = {cell: w for cell, w in answers.items() if cell in expected or w["source"] == source}
    assert chosen.keys() == expected.keys(), sorted(chosen.keys() ^ expected.keys())[:5]
    for cell, want in expected.items():
        window = chosen[cell]
        assert window["source"] == source, (cell, window)
        for name, value in want.items():
            if exact or name not in ("users", "buyers"):
                assert window[name] == value, (cell, name, window)
            else:
                assert abs(window[name] - value) <= max(1, 0.03 * value), (cell, name, window)


def table_snapshot(settings, table):
    connection = happybase.Connection(settings.host, settings.thrift_port, timeout=60000)
    try:
        return dict(connection.table(table).scan(include_timestamp=True))
    finally:
        connection.close()


def publish_hour_with(spark, settings, hour, views):
    """The recompute DAG's steps for one hour, in process, with ``views``: raw gate, batch job, view gate, publish."""
    raw, _ = recompute.hour_events(spark, settings, hour)
    raw_gate = validate_raw(raw, hour, None, views=views)
    raw_gate.raise_if_failed()
    runs.write_run_record(settings, recompute.recompute_hour(spark, settings, hour, views))
    gates.gate_version(settings, hour, raw_gate.facts, views)
    return publish.publish_hour(settings, hour)


def test_changed_views_rebuild_the_speed_layer_and_a_backfill_publishes_them(
    stack, settings, spark, speed_layer, tmp_path, unique_name
):
    new_views_file = tmp_path / "views.toml"
    new_views_file.write_text(NEW_VIEWS)
    new_views = load_views(new_views_file)
    local = dataclasses.replace(settings, state_dir=tmp_path, batch_table=f"{unique_name}_batch")
    run = speed_layer()
    local = dataclasses.replace(local, speed_table=run.table)
    env = {"TWINLAYER_BATCH_TABLE": local.batch_table}
    first = int(time.time() * 1000) // HOUR_MS * HOUR_MS - 3 * HOUR_MS  # hour A: published; A + 1 h: not
    second = first + HOUR_MS
    hour_a, hour_b = hour_of_events(first, 0), hour_of_events(second, EVENTS_PER_HOUR)
    resent = hour_b[::50][:RESENT]
    try:
        run.start(env=env)
        send(local, run.topic, hour_a)
        run.wait_until(lambda m: run.processed("views") >= len(hour_a), 120, "hour A through the views")
        send(local, run.topic, hour_b + resent)
        wait_until_caught_up(local, run)
        publish_hour_with(spark, local, first, VIEWS)
        assert publish.published(Server(local).pool, local)[first]["views"] == fingerprints(VIEWS)

        run.stop()
        run.start(env={**env, "TWINLAYER_VIEWS": str(new_views_file)})  # no operator step
        status = rebuild.wait(run.checkpoint_dir, 240)
        assert status.since_ms == second and "definitions changed" in status.reason  # the oldest unpublished hour
        read_from = second - MAX_FUTURE_MS  # how far ahead of its Kafka time an event may be
        assert status.records_done == sum(1 for e in hour_a + hour_b + resent if e["event_time"] >= read_from)
        assert {p.name for p in run.checkpoint_dir.iterdir() if p.name.startswith("views")} == {
            f"views-{views_fingerprint(new_views)}",
            rebuild.STATUS_FILE,
        }

        # the rebuilt speed views of the unpublished hour equal brute force for the new definitions
        expected_b = truth_of(hour_b + resent, new_views, second, second + HOUR_MS)
        every_cell = truth_of(hour_a + hour_b, new_views, first, second + HOUR_MS)
        stored, _ = speed_cells(local, run.table, new_views)
        assert_cells_match({c: v for c, v in stored.items() if second <= c[2]}, expected_b, new_views)
        changed = {v.name for v in new_views if fingerprints(VIEWS).get(v.name) != v.fingerprint}
        assert changed == {"campaign_views_10s", "purchases_by_ad_type_1m"}
        early = [c for c in stored if c[0] in changed and c[2] < second]
        assert not early, "the rebuild wrote windows before its start (it read only part of their events)"

        # serving: a changed view's published hour is answered by the speed layer, and the answer says so
        server = Server(local)
        answers, others = served(server, new_views, every_cell, first, second + HOUR_MS)
        assert others["campaign_views_10s"] == others["purchases_by_ad_type_1m"] == [hour_label(first)]
        assert others["campaign_activity_1m"] == []  # unchanged: its published version still serves
        assert not [c for c in answers if c[2] < second and c[0] in changed], "no cells of the new definitions yet"
        assert {w["source"] for c, w in answers.items() if c[2] < second and c[0] not in changed} == {"batch"}

        # a backfill of the published hour with the new definitions publishes them, the old version kept for rollback
        version = recompute.hour_events(spark, local, first)[1]
        entry = publish_hour_with(spark, local, first, new_views)
        assert entry["views"] == fingerprints(new_views) and entry["version"] == version
        assert entry["previous"] == [version] and entry["previous_views"] == [fingerprints(VIEWS)]
        server = Server(local)
        answers, others = served(server, new_views, every_cell, first, second + HOUR_MS)
        assert all(hours == [] for hours in others.values())
        assert_served_equals(answers, truth_of(hour_a, new_views, first, second), "batch", exact=True)
        assert_served_equals(answers, expected_b, "speed", exact=False)

        # a replay of a range rewrites byte-identical cells
        before = table_snapshot(local, run.table)
        args = ["speed", "rebuild", "--since", str(second), "--checkpoint-dir", str(run.checkpoint_dir), "--json"]
        assert cli([*args, "--timeout", "240"]) == 0
        assert rebuild.read_status(run.checkpoint_dir).records_done == status.records_done
        assert table_snapshot(local, run.table) == before
        assert set(speed_cells(local, run.table, new_views)[1].values()) == {1}, "a cell written twice"

        # the archive holds every record once: nothing archived again by either rebuild
        archived = read_archive(spark, run.archive_dir)
        coordinates = [(r.kafka_partition, r.kafka_offset) for r in archived.collect()]
        assert len(coordinates) == len(set(coordinates)) == len(hour_a) + len(hour_b) + len(resent)
    finally:
        run.stop()
