"""Checks the speed-layer tests share: drive a real speed-layer job and compare what it stored with the truth."""

import json
import time

import happybase

from tests import truth
from twinlayer.localstack.generator import Workload, produce
from twinlayer.model.views import VIEWS, by_stored_name
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


def speed_cells(settings, table, views=VIEWS):
    conn = happybase.Connection(settings.host, settings.thrift_port, timeout=60000)
    try:
        catalog = by_stored_name(views)
        cells, versions = {}, {}
        for row, data in conn.table(table).scan():
            stored, key, start = parse_row_key(row)
            if stored not in catalog:  # another definition's cells
                continue
            view = catalog[stored]
            cells[(view.name, key, start)] = decode_row(view, row, data).measures
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


def assert_cells_match(stored, expected, views=VIEWS):
    """Every cell and no other; counts, sums, min and max equal, distinct counts within the sketch's error."""
    assert stored.keys() == expected.keys(), (
        f"missing {sorted(expected.keys() - stored.keys())[:5]}, "
        f"unexpected {sorted(stored.keys() - expected.keys())[:5]}"
    )
    distinct = {view.name: {m.name for m in view.measures if m.kind == "distinct"} for view in views}
    for cell, want in expected.items():
        got, wanted = dict(stored[cell]), dict(want)
        for name in distinct[cell[0]]:
            sketch, want_users = got.pop(name, None), wanted.pop(name, None)
            if want_users is not None:
                assert abs(sketch_estimate(sketch) - want_users) <= max(1.0, 0.03 * want_users), (cell, name)
        assert got == wanted, cell


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


def wait_until_caught_up(settings, run, timeout: float = 240, views=VIEWS) -> None:
    """Both queries committed every record the topic holds: the views query's checkpoint and the archive's commit
    records reach Kafka's end offsets (the producer is done)."""
    from twinlayer.speed.rebuild import committed_offsets, views_checkpoint
    from twinlayer.storage.archive import ingest_position
    from twinlayer.storage.kafka import end_offsets

    end = end_offsets(settings.kafka_bootstrap, run.topic)

    def done(_metrics) -> bool:
        viewed = committed_offsets(views_checkpoint(run.checkpoint_dir, views), run.topic)
        archived = ingest_position(run.archive_dir).read_to
        return all(viewed.get(p, 0) >= offset and archived.get(p, 0) >= offset for p, offset in end.items())

    run.wait_until(done, timeout, "both queries to commit every record of the topic")
