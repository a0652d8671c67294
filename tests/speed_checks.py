"""Checks the speed-layer tests share: drive a real speed-layer job and compare what it stored with the truth."""

import json
import time

import happybase

from tests import truth
from twinlayer.localstack.generator import Workload, produce
from twinlayer.model.views import by_name
from twinlayer.storage.archive import read as read_archive
from twinlayer.storage.hbase import decode_row, parse_row_key, sketch_estimate

LATE_BY_MS = 120_000  # far behind a 10 s watermark

# generated events with every planted fault: late, duplicated and malformed records
WORKLOAD = {
    "rate": 4000,
    "count": 24_000,
    "late_fraction": 0.03,
    "late_by_ms": LATE_BY_MS,
    "duplicate_fraction": 0.03,
    "malformed_fraction": 0.03,
    "seed": 7,
}


def produce_warmup(settings, run):
    """On-time events first, so the watermark exists before the first planted late event arrives."""
    produce(settings.kafka_bootstrap, run.topic, Workload(rate=2000, count=2000, seed=1))
    run.wait_until(lambda m: run.processed("views") >= 2000, 120, "the warm-up to be processed")
    time.sleep(1)


def wait_until_drained(run, total):
    run.wait_until(
        lambda m: all(run.processed(q) >= total for q in ("views", "ingest")),
        240,
        f"both queries to process {total} records",
    )


def speed_cells(settings, table):
    conn = happybase.Connection(settings.host, settings.thrift_port, timeout=60000)
    try:
        views = by_name()
        cells, versions = {}, {}
        for row, data in conn.table(table).scan():
            view_name, key, start = parse_row_key(row)
            cells[(view_name, key, start)] = decode_row(views[view_name], row, data).measures
            for column in data:
                versions[(row, column)] = len(conn.table(table).cells(row, column, versions=10))
        return cells, versions
    finally:
        conn.close()


def expected_speed_cells(records):
    classified = truth.classify(records)
    on_time = [
        event for record, event in classified.valid if event["event_time"] >= record.timestamp_ms - LATE_BY_MS / 2
    ]
    return classified, truth.view_cells(truth.dedupe_first(on_time))


def assert_cells_match(stored, expected):
    assert stored.keys() == expected.keys(), (
        f"missing {sorted(expected.keys() - stored.keys())[:5]}, "
        f"unexpected {sorted(stored.keys() - expected.keys())[:5]}"
    )
    for cell, want in expected.items():
        got = dict(stored[cell])
        users = got.pop("users", None)
        wanted = dict(want)
        want_users = wanted.pop("users", None)
        assert got == wanted, cell
        if want_users is not None:
            assert abs(sketch_estimate(users) - want_users) <= max(1.0, 0.03 * want_users), cell


def assert_archive_exact(spark, run, classified):
    archived = read_archive(spark, run.archive_dir)
    coordinates = [
        (r.kafka_partition, r.kafka_offset) for r in archived.select("kafka_partition", "kafka_offset").collect()
    ]
    assert len(coordinates) == len(set(coordinates)), "an archived record appears twice"
    assert set(coordinates) == {(record.partition, record.offset) for record, _ in classified.valid}


def assert_dead_letters(settings, run, classified):
    letters = {}
    for record in truth.read_topic(settings.kafka_bootstrap, run.dlq_topic):
        body = json.loads(record.payload)
        letters[(body["partition"], body["offset"])] = body
        assert record.payload and body["topic"] == run.topic
    assert {c: b["reason"] for c, b in letters.items()} == classified.refused


def assert_nothing_lost_nothing_twice(settings, spark, run):
    """Every cell, archived record and dead letter equals the truth of the whole topic; a replayed micro-batch
    rewrote its cells in place (one version each) instead of adding to them."""
    classified, expected = expected_speed_cells(truth.read_topic(settings.kafka_bootstrap, run.topic))
    stored, versions = speed_cells(settings, run.table)
    assert_cells_match(stored, expected)
    assert set(versions.values()) == {1}, "a replayed micro-batch created a second version of a cell"
    assert_archive_exact(spark, run, classified)
    assert_dead_letters(settings, run, classified)
    return classified


def committed_offsets(query_checkpoint, topic: str) -> dict[int, int]:
    """Partition → the offset after the records of the last micro-batch the query committed."""
    from twinlayer.speed.checkpoints import last_spark_commit

    last = last_spark_commit(query_checkpoint)
    if last is None:
        return {}
    planned = json.loads((query_checkpoint / "offsets" / str(last)).read_text().splitlines()[2])
    return {int(partition): offset for partition, offset in planned[topic].items()}


def wait_until_caught_up(settings, run, timeout: float = 240) -> None:
    """Both queries committed every record the topic holds: the views query's checkpoint and the archive's commit
    records reach Kafka's end offsets (the producer is done)."""
    from twinlayer.storage.archive import ingest_position
    from twinlayer.storage.kafka import end_offsets

    end = end_offsets(settings.kafka_bootstrap, run.topic)

    def done(_metrics) -> bool:
        views = committed_offsets(run.checkpoint_dir / "views", run.topic)
        archived = ingest_position(run.archive_dir).read_to
        return all(views.get(p, 0) >= offset and archived.get(p, 0) >= offset for p, offset in end.items())

    run.wait_until(done, timeout, "both queries to commit every record of the topic")
