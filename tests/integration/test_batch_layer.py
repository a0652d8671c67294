"""The batch layer and serving on the real stack: three past hours of generated events go through Kafka and the
real speed layer into the archive; the real batch job (spark-submit) recomputes each hour; the quality gates,
publish, drift and serving run as the recompute DAG runs them.
"""

import dataclasses
import json
import os
import time

import happybase
import pytest
import requests

from tests import truth
from tests.batch_jobs import spark_submit_recompute
from twinlayer.batch import drift as batch_drift
from twinlayer.batch import gates, late, report
from twinlayer.batch import publish as publishing
from twinlayer.batch.quality import QualityGateFailed
from twinlayer.batch.runs import NotGated, record_gate_pass
from twinlayer.localstack.generator import Workload, produce
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.model.views import VIEWS, by_name, fingerprints
from twinlayer.serving.merge import Server
from twinlayer.storage import archive
from twinlayer.storage import hbase as hbase_store
from twinlayer.storage.archive import epochs as archive_epochs
from twinlayer.storage.hbase import parse_row_key
from twinlayer.storage.kafka import end_offsets

pytestmark = pytest.mark.integration

HOURS = 3


@pytest.fixture(scope="module")
def lambda_run(stack, settings, tmp_path_factory):
    """Three closed hours of events (late, duplicated and malformed ones included) archived by a real speed layer."""
    from tests.conftest import SpeedLayerProcess, _free_port

    root = tmp_path_factory.mktemp("lambda")
    name = f"batch-{os.getpid()}-{root.name[-6:]}".lower()
    run = SpeedLayerProcess(settings, name, root, _free_port(), watermark="10 seconds", max_versions=1)
    local = dataclasses.replace(
        settings,
        state_dir=root / "state",
        speed_table=run.table,
        batch_table=f"{run.table}_batch".replace("_speed_batch", "_batch"),
    )
    run.args[run.args.index("--archive-dir") + 1] = str(local.archive_dir)
    now_ms = int(time.time() * 1000)
    first_hour = now_ms - now_ms % HOUR_MS - (HOURS + 1) * HOUR_MS
    count = 9000
    ticks = iter(range(count * 2))
    clock = lambda: first_hour + next(ticks) * (HOURS * HOUR_MS) // count  # noqa: E731
    run.start()
    try:
        produce(
            settings.kafka_bootstrap,
            run.topic,
            Workload(
                rate=0,
                count=count,
                late_fraction=0.03,
                late_by_ms=120_000,
                duplicate_fraction=0.03,
                malformed_fraction=0.03,
                seed=21,
            ),
            clock=clock,
        )
        records = truth.read_topic(settings.kafka_bootstrap, run.topic)
        run.wait_until(
            lambda m: all(run.processed(q) >= len(records) for q in ("views", "ingest")),
            240,
            "the speed layer to archive every record",
        )
        send_conflicting_copies(settings, run.topic, truth.classify(records).valid, per_hour=4)
        records = truth.read_topic(settings.kafka_bootstrap, run.topic)
        run.wait_until(
            lambda m: run.processed("ingest") >= len(records), 120, "the speed layer to archive the conflicting copies"
        )
    finally:
        run.stop()
    classified = truth.classify(records)
    events = truth.first_received(classified.valid)
    yield dataclasses.make_dataclass("LambdaRun", ["settings", "hours", "events", "run", "conflicting"])(
        local, [first_hour + i * HOUR_MS for i in range(HOURS)], events, run, truth.conflicting_ids(classified.valid)
    )


def send_conflicting_copies(settings, topic, valid, per_hour):
    """A buggy producer: clicks sent again later under the same event id as views of another user (the view that
    counts views would count the id if a gate took any of its records)."""
    from kafka import KafkaProducer

    chosen: dict[int, list[dict]] = {}
    for _, event in valid:
        taken = chosen.setdefault(event["event_time"] // HOUR_MS, [])
        if (
            event["event_type"] == "click"
            and len(taken) < per_hour
            and all(e["event_id"] != event["event_id"] for e in taken)
        ):
            taken.append(event)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        for event in (e for taken in chosen.values() for e in taken):
            copy = {k: v for k, v in event.items() if k != "campaign_id"}
            copy.update(event_type="view", user_id=f"{event['user_id']}-conflict")
            producer.send(topic, key=event["event_id"].encode(), value=json.dumps(copy).encode())
        producer.flush()
    finally:
        producer.close()


def run_hour(settings, hour):
    """The recompute DAG's steps for one hour, in its order; (publication entry, the raw gate's facts)."""
    started = time.monotonic()
    raw_facts = gates.gate_raw(settings, hour).facts
    spark_submit_recompute(settings, hour, hour + HOUR_MS)
    gates.gate_version(settings, hour, raw_facts)
    entry = publishing.publish_hour(settings, hour)
    batch_drift.hour_drift(settings, hour)
    report.export_run_metrics(settings, hour, time.monotonic() - started)
    return entry, raw_facts


def batch_cells(settings):
    conn = happybase.Connection(settings.host, settings.thrift_port, timeout=60000)
    try:
        table = conn.table(settings.batch_table)
        return {
            row: {col: table.cells(row, col, versions=10, include_timestamp=True) for col in data}
            for row, data in table.scan(columns=[b"m"])
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def published(lambda_run):
    return {hour: run_hour(lambda_run.settings, hour) for hour in lambda_run.hours}


def test_merged_answer_equals_truth_for_every_published_window(lambda_run, published):
    start, end = lambda_run.hours[0], lambda_run.hours[-1] + HOUR_MS
    # (planted "future" records are valid here: they are in the future of the generator's past clock only)
    expected = {cell: v for cell, v in truth.view_cells(lambda_run.events).items() if start <= cell[2] < end}
    server = Server(lambda_run.settings)
    checked = 0
    for view in VIEWS:
        for key in sorted({k for (v, k, _) in expected if v == view.name}):
            answer = server.query(view, key, start, end)
            assert answer.boundary_ms == end
            got = {w["window_start_ms"]: w for w in answer.windows}
            want = {s: cells for (v, k, s), cells in expected.items() if v == view.name and k == key}
            assert got.keys() == want.keys(), (view.name, key)
            for window_start, cells in want.items():
                assert got[window_start]["source"] == "batch" and got[window_start]["exact"]
                assert {m: got[window_start][m] for m in cells} == cells, (view.name, key, window_start)
                checked += 1
    assert checked == len(expected)


def test_conflicting_duplicates_are_counted_and_the_hour_is_published(lambda_run, published):
    """Copies of clicks under the same ids as views of other users: every hour still publishes (its gates count the
    records the views count: the first received), each hour's conflicts are counted, and the last is pushed."""
    conflicting_per_hour = {
        hour: sum(
            1
            for e in lambda_run.events
            if e["event_id"] in lambda_run.conflicting and hour <= e["event_time"] < hour + HOUR_MS
        )
        for hour in lambda_run.hours
    }
    assert all(conflicting_per_hour.values()), conflicting_per_hour
    for hour, (entry, raw_facts) in published.items():
        assert entry["version"] > 0
        assert raw_facts["conflicting_duplicates"] == conflicting_per_hour[hour]
    last = lambda_run.hours[-1]
    assert (
        pushed_value(lambda_run.settings, "twinlayer_batch_conflicting_duplicates", gate="raw")
        == (conflicting_per_hour[last])
    )


def test_the_archive_knows_how_far_it_has_read_kafka_and_closes_hours_by_it(lambda_run):
    settings, topic = lambda_run.settings, lambda_run.run.topic
    position = archive.ingest_position(settings.archive_dir)
    kafka_end = end_offsets(settings.kafka_bootstrap, topic)
    assert position.read_to == {p: end for p, end in kafka_end.items() if end}
    newest: dict[int, int] = {}
    for r in truth.read_topic(settings.kafka_bootstrap, topic):
        newest[r.partition] = max(newest.get(r.partition, r.timestamp_ms), r.timestamp_ms)
    assert position.newest_ms == newest
    caught_up = late.ArchivePosition(position.read_to, position.newest_ms, kafka_end=kafka_end)
    behind = late.ArchivePosition(
        {p: end // 2 for p, end in position.read_to.items()},
        dict.fromkeys(newest, min(lambda_run.hours)),
        kafka_end=kafka_end,
    )
    hour_end = lambda_run.hours[-1] + HOUR_MS
    assert caught_up.unread == 0 and late.hour_is_closed(settings, hour_end, position=caught_up)
    assert behind.unread > 0 and not late.hour_is_closed(settings, hour_end, position=behind)


def test_rerun_and_backfill_leave_byte_identical_cells_and_republish_is_harmless(lambda_run, published):
    settings = lambda_run.settings
    before = batch_cells(settings)
    pointers = publishing.published(hbase_store.pool_for(settings, 1), settings)
    spark_submit_recompute(settings, lambda_run.hours[1], lambda_run.hours[1] + HOUR_MS)  # rerun one hour
    assert batch_cells(settings) == before
    spark_submit_recompute(settings, lambda_run.hours[0], lambda_run.hours[-1] + HOUR_MS)  # three hours
    assert batch_cells(settings) == before
    assert publishing.publish_hour(settings, lambda_run.hours[1]) == pointers[lambda_run.hours[1]]
    older = pointers[lambda_run.hours[1]]["version"] - 1  # a slower run of the same hour, with less of the archive
    with pytest.raises(NotGated):
        publishing.publish_hour(settings, lambda_run.hours[1], older)
    record_gate_pass(settings, lambda_run.hours[1], older, fingerprints(VIEWS))  # its gate passed too
    assert publishing.publish_hour(settings, lambda_run.hours[1], older) == pointers[lambda_run.hours[1]]
    assert publishing.published(hbase_store.pool_for(settings, 1), settings) == pointers


def test_failed_gate_publishes_nothing_and_serving_is_unchanged(lambda_run, published, spark, tmp_path):
    """A bad hour: nulls, event times outside the hour, and half of what the speed layer counted."""
    from pyspark.sql import functions as F

    settings = lambda_run.settings
    bad_hour = lambda_run.hours[-1] + HOUR_MS
    good = spark.read.parquet(str(archive_epochs(settings.archive_dir)[0])).limit(400).toPandas()
    good["event_time_ms"] = bad_hour + (good.index.to_numpy() * 7_000) % HOUR_MS
    # the speed layer saw all 400 (its cells say so) ...
    full = spark.createDataFrame(good.drop(columns=["event_hour"]))
    full = full.withColumn("event_time", F.timestamp_millis("event_time_ms"))
    from twinlayer.model.views import aggregate
    from twinlayer.storage import hbase as hbase_store

    mutations = hbase_store.view_mutations(aggregate(full).collect(), batch_id=1)
    hbase_store.ViewWriter(hbase_store.pool_for(settings, 1), settings.speed_table).write(mutations)
    # ... the archive gets half of them, some with nulls and some outside the hour
    half = good.iloc[:200].copy()
    half.loc[:20, "user_id"] = None
    half.loc[21:40, "event_time_ms"] = bad_hour - 5_000
    plant_epoch(spark, settings, half, tmp_path)

    server = Server(settings)
    view = by_name()["campaign_views_10s"]
    key = parse_row_key(next(m.row for m in mutations if f"|{view.stored_name}|".encode() in m.row))[1]
    before = server.query(view, key, bad_hour, bad_hour + HOUR_MS).as_dict()
    pointers = server.publications()
    with pytest.raises(QualityGateFailed) as failure:
        gates.gate_raw(settings, bad_hour)
    message = str(failure.value)
    assert "expect_column_values_to_not_be_null(user_id)" in message
    assert "expect_column_values_to_be_between(event_time_ms)" in message
    assert "expect_table_row_count_to_be_between" in message
    assert server.publications() == pointers
    assert server.query(view, key, bad_hour, bad_hour + HOUR_MS).as_dict() == before
    assert all(w["source"] == "speed" for w in before["windows"]) and before["windows"]
    assert pushed_value(settings, "twinlayer_batch_gate_success", gate="raw") == 0


def plant_epoch(spark, settings, frame, tmp_path):
    """Write rows into a new archive epoch as the speed layer's ingest query commits a micro-batch; every row goes
    to the partition of the latest event time (rows whose event time lies outside it are for the gates to find)."""
    from pyspark.sql import functions as F

    epoch = archive.open_epoch(settings.archive_dir, len(archive_epochs(settings.archive_dir)) + 1)
    rows = spark.createDataFrame(frame.drop(columns=["event_hour"]))
    rows = rows.withColumn("event_time", F.timestamp_millis(F.lit(int(frame["event_time_ms"].max()))))
    archive.write_batch(rows, epoch, batch_id=0)


def test_drift_metric_equals_the_real_difference_between_the_layers(lambda_run, published):
    settings = lambda_run.settings
    hour = lambda_run.hours[1]
    view = by_name()["campaign_views_10s"]
    conn = happybase.Connection(settings.host, settings.thrift_port)
    try:
        speed = conn.table(settings.speed_table)
        rows = list(speed.scan(columns=[b"m:views"]))
        stored = f"|{view.stored_name}|".encode()
        planted = [(r, d) for r, d in rows if stored in r and hour <= int(r[-13:]) < hour + HOUR_MS][:5]
        for row, data in planted:  # the speed layer "miscounted" five windows by +7
            speed.put(row, {b"m:views": str(int(data[b"m:views"]) + 7).encode()}, timestamp=int(row[-13:]))
    finally:
        conn.close()
    expected_cells = {
        (k, s): c
        for (v, k, s), c in truth.view_cells(lambda_run.events).items()
        if v == view.name and hour <= s < hour + HOUR_MS
    }
    server = Server(settings)
    speed_values = {}
    from twinlayer.storage.hbase import read_view

    for key in {k for k, _ in expected_cells}:
        for w in read_view(server.pool, settings.speed_table, view, key, hour, hour + HOUR_MS):
            speed_values[(key, w.window_start_ms)] = w.measures["views"]
    real_gap = sum(abs(c["views"] - speed_values.get(cell, 0)) for cell, c in expected_cells.items())
    real_total = sum(c["views"] for c in expected_cells.values())
    assert planted and real_gap >= 35

    report = batch_drift.hour_drift(settings, hour)
    assert report[view.name]["views"]["abs_diff"] == real_gap
    assert report[view.name]["views"]["ratio"] == pytest.approx(real_gap / real_total)
    assert pushed_value(settings, "twinlayer_batch_drift_abs", view=view.name, measure="views") == real_gap
    assert pushed_value(settings, "twinlayer_batch_drift_ratio", view=view.name, measure="views") == pytest.approx(
        real_gap / real_total
    )


def pushed_value(settings, name, **labels):
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{settings.url('pushgateway_port')}/metrics", timeout=5).text
    values = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(values) == 1, (name, labels, values)
    return values[0]


def test_speed_cells_of_a_published_hour_stay_rewritable_and_expire_by_ttl(lambda_run, published, stack):
    """The recompute leaves a published hour's speed cells to the table's TTL: a replay rewriting them (same row,
    same timestamp) is visible, where a delete marker would have masked it."""
    settings = lambda_run.settings
    hour = lambda_run.hours[0]
    view = by_name()["campaign_views_10s"]
    pool = Server(settings).pool
    key = next(k for (v, k, s) in truth.view_cells(lambda_run.events) if v == view.name and hour <= s < hour + HOUR_MS)
    before = hbase_store.read_view(pool, settings.speed_table, view, key, hour, hour + HOUR_MS)
    assert before, "the speed layer's cells of a published hour are still there"
    window = before[0].window_start_ms
    rewrite = hbase_store.Mutation(
        hbase_store.row_key(view.stored_name, key, window), {b"m:views": hbase_store.encode_value(987654)}, window
    )
    hbase_store.ViewWriter(pool, settings.speed_table).write([rewrite])
    after = hbase_store.read_view(pool, settings.speed_table, view, key, window, window + 1)
    assert after[0].measures["views"] == 987654
    conn = happybase.Connection(settings.host, settings.thrift_port, timeout=20000)
    try:
        stack_ttl = conn.table(stack.settings.speed_table).families()[hbase_store.FAMILY]["time_to_live"]
    finally:
        conn.close()
    assert stack_ttl == stack.settings.speed_ttl_seconds
    with pytest.raises(ValueError, match="no earlier published version"):
        publishing.rollback(hbase_store.pool_for(settings, 1), settings, hour)


def test_late_data_makes_a_new_version_and_rollback_returns_to_the_old_one(lambda_run, published, spark, tmp_path):
    settings = lambda_run.settings
    hour = lambda_run.hours[2]
    server = Server(settings)
    view = by_name()["campaign_views_10s"]
    old_version = server.publications()[hour_label(hour)]["version"]
    archived = (
        spark.read.parquet(str(archive_epochs(settings.archive_dir)[0]))
        .where(f"event_hour = '{hour_label(hour)}' and event_type = 'view'")
        .limit(12)
        .toPandas()
    )
    late_events = archived.copy()
    late_events["event_id"] = late_events["event_id"] + "-late"  # new events, arriving after the hour was published
    key = late_events["campaign_id"].iloc[0]
    before = server.query(view, key, hour, hour + HOUR_MS).as_dict()

    def late_of_ours():  # (an hour before the first may hold a few late events and is never published here)
        return [h for h in late.late_hours(settings) if h["hour_ms"] in lambda_run.hours]

    assert late_of_ours() == []
    plant_epoch(spark, settings, late_events, tmp_path)
    assert late_of_ours() == [
        {
            "hour": hour_label(hour),
            "hour_ms": hour,
            "published": old_version,
            "archived": old_version + len(late_events),
        }
    ]
    state = report.export_state_metrics(settings)
    others = [h for h in late.late_hours(settings) if h["hour_ms"] not in lambda_run.hours]
    assert state["late_hours"] == 1 + len(others)
    assert state["late_records"] == len(late_events) + sum(h["archived"] - h["published"] for h in others)
    assert pushed_value(settings, "twinlayer_batch_late_records") == state["late_records"]

    entry, _ = run_hour(settings, hour)
    assert late_of_ours() == []
    assert entry["version"] == old_version + len(late_events) and entry["previous"][0] == old_version
    after = server.query(view, key, hour, hour + HOUR_MS).as_dict()
    total = lambda answer: sum(w["views"] for w in answer["windows"])  # noqa: E731
    assert total(after) == total(before) + int((late_events["campaign_id"] == key).sum())
    assert {w["version"] for w in after["windows"]} == {entry["version"]}

    rolled = publishing.rollback(hbase_store.pool_for(settings, 1), settings, hour)
    assert rolled["version"] == old_version and rolled["rolled_back_from"] == entry["version"]
    time.sleep(settings.serving_publications_max_age_seconds)  # how long a pointer's move takes to reach answers
    assert server.query(view, key, hour, hour + HOUR_MS).as_dict() == before


def test_archive_counts_without_spark_equal_the_batch_versions(lambda_run, spark):
    from twinlayer.storage.archive import hour_counts
    from twinlayer.storage.archive import read as read_archive

    settings = lambda_run.settings
    by_spark = {
        r.event_hour: r["count"]
        for r in read_archive(spark, settings.archive_dir).groupBy("event_hour").count().collect()
    }
    assert hour_counts(settings.archive_dir) == by_spark
    assert all(by_spark.get(hour_label(h), 0) > 0 for h in lambda_run.hours)


def test_archive_quality_counts_orphans_and_fails_on_a_missing_committed_file(lambda_run, spark):
    from twinlayer.storage.archive import committed_files

    settings = lambda_run.settings
    hour = lambda_run.hours[0]
    clean = gates.check_archive(settings, hour)
    assert clean["missing_files"] == [] and clean["raw_rows"] > 0
    epoch = archive_epochs(settings.archive_dir)[0]
    committed = sorted(committed_files(epoch))
    orphan = committed[0].parent / "part-99999-left-by-a-crashed-batch.c000.snappy.parquet"
    orphan.write_bytes(committed[0].read_bytes())
    young = orphan.with_name("part-99998-being-written.c000.snappy.parquet")  # a batch about to commit: not counted
    young.write_bytes(committed[0].read_bytes())
    old = time.time() - archive.ORPHAN_AFTER_S - 60
    os.utime(orphan, (old, old))
    hidden = committed[-1].with_name(committed[-1].name + ".moved")
    committed[-1].rename(hidden)
    try:
        with pytest.raises(QualityGateFailed, match="committed file missing"):
            gates.check_archive(settings, hour)
        assert pushed_value(settings, "twinlayer_archive_missing_files") == 1
        assert pushed_value(settings, "twinlayer_archive_orphan_files") == clean["orphan_files"] + 1
    finally:
        hidden.rename(committed[-1])
        orphan.unlink()
        young.unlink()
    assert archive.integrity(settings.archive_dir)["missing_files"] == []
