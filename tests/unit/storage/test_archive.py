"""The archive's writer and readers with local Spark, no services: a micro-batch is archived exactly once however
often it is replayed, a crash between the files and the commit leaves nothing readable behind, and the counts read
from the commit records equal Spark's."""

import datetime as dt

import pytest

from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.storage import archive

HOUR = 1_790_002_800_000


def events(spark, first: int, count: int):
    rows = []
    for i in range(first, first + count):
        t = HOUR + (i * 97_000) % (2 * HOUR_MS)  # two hours
        rows.append(
            (
                f"e{i}",
                "u",
                "p",
                "a",
                "banner",
                "view",
                "10.0.0.1",
                dt.datetime.fromtimestamp(t / 1000, dt.UTC),
                t,
                "c",
                0,
                i,
                dt.datetime.fromtimestamp(t / 1000, dt.UTC),
            )
        )
    schema = ", ".join(f"{n} {t}" for n, t in archive.ARCHIVE_COLUMNS.items() if n != archive.HOUR_COLUMN)
    return spark.createDataFrame(rows, schema)


@pytest.fixture
def epoch(tmp_path):
    return archive.open_epoch(tmp_path / "archive", 1)


def offsets(spark, archive_dir):
    return sorted(r.kafka_offset for r in archive.read(spark, archive_dir).select("kafka_offset").collect())


def test_a_replayed_batch_is_archived_once(spark, epoch):
    first = archive.write_batch(events(spark, 0, 300), epoch, batch_id=0)
    again = archive.write_batch(events(spark, 0, 300), epoch, batch_id=0)
    archive.write_batch(events(spark, 300, 200), epoch, batch_id=1)
    assert (
        first == again
        and first["rows"] == 300
        and {f["hour"] for f in first["files"]} == {hour_label(HOUR), hour_label(HOUR + HOUR_MS)}
    )
    assert offsets(spark, epoch.parent) == list(range(500))
    by_spark = {
        r.event_hour: r["count"] for r in archive.read(spark, epoch.parent).groupBy("event_hour").count().collect()
    }
    assert archive.hour_counts(epoch.parent) == by_spark and sum(by_spark.values()) == 500


def test_files_of_a_batch_that_died_before_its_commit_are_never_read(spark, epoch):
    archive.write_batch(events(spark, 0, 300), epoch, batch_id=0)
    commit = epoch / archive.COMMITS / f"{0:012d}.json"
    commit.unlink()  # the process died after moving the files, before the commit
    leftover = archive.committed_files(epoch)
    assert leftover == []
    archive.write_batch(events(spark, 0, 300), epoch, batch_id=0)  # Spark replays the batch
    assert offsets(spark, epoch.parent) == list(range(300))
    assert archive.integrity(epoch.parent)["missing_files"] == []


def test_records_set_aside_are_handed_over_before_the_commit_and_never_archived(spark, epoch):
    from pyspark.sql import functions as F

    handed: list = []
    frame = events(spark, 0, 300).withColumn("error", F.when(F.col("kafka_offset") % 10 == 0, F.lit("bad")))
    record = archive.write_batch(frame, epoch, 0, set_aside=F.col("error").isNotNull(), on_set_aside=handed.append)
    assert record["rows"] == 270 and record["set_aside"] == 30
    assert sorted(handed[0].column("kafka_offset").to_pylist()) == list(range(0, 300, 10))
    assert handed[0].column("kafka_timestamp")[0].as_py().year >= 2026
    assert offsets(spark, epoch.parent) == [o for o in range(300) if o % 10]
    archive.write_batch(frame, epoch, 0, set_aside=F.col("error").isNotNull(), on_set_aside=handed.append)
    assert len(handed) == 1, "a committed batch hands nothing over again"


def test_an_empty_archive_reads_as_an_empty_table(spark, tmp_path):
    assert archive.read(spark, tmp_path / "none") is None
    empty = archive.open_epoch(tmp_path / "archive", 1)
    assert archive.read(spark, empty.parent).count() == 0
    archive.write_batch(events(spark, 0, 0), empty, batch_id=0)
    assert archive.read(spark, empty.parent).count() == 0 and archive.hour_counts(empty.parent) == {}


def test_commit_records_say_how_far_in_kafka_the_archive_has_got(spark, epoch):
    """Set-aside records count: the archive has read them too."""
    from pyspark.sql import functions as F

    frame = events(spark, 0, 300).withColumn("kafka_partition", F.col("kafka_offset") % 3)
    frame = frame.withColumn("error", F.when(F.col("kafka_offset") == 299, F.lit("bad")))
    first = archive.write_batch(frame, epoch, 0, set_aside=F.col("error").isNotNull())
    newest = {str(p): max(HOUR + (i * 97_000) % (2 * HOUR_MS) for i in range(300) if i % 3 == p) for p in range(3)}
    assert first["read_to"] == {"0": 298, "1": 299, "2": 300} and first["newest_ms"] == newest
    archive.write_batch(events(spark, 300, 10), epoch, batch_id=1)
    position = archive.ingest_position(epoch.parent)
    assert position.read_to == {0: 310, 1: 299, 2: 300} and position.recorded
    assert position.newest_kafka_ms == max(newest.values())
    empty = archive.write_batch(events(spark, 0, 0), epoch, batch_id=2)
    assert empty["read_to"] == {} and archive.ingest_position(epoch.parent).read_to == {0: 310, 1: 299, 2: 300}
