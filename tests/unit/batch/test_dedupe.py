"""The batch layer's dedupe rule on local Spark (pure logic, no services): the record Kafka received first counts
(earliest Kafka timestamp, then lowest partition, then lowest offset), ids whose copies differ in content are
flagged, and records without an id pass through one by one."""

import datetime as dt

from twinlayer.batch.dedupe import CONFLICTING, first_received
from twinlayer.model import events as ev

T0 = dt.datetime(2026, 12, 1, 10, 0, 0)


def record(event_id, user="u1", seconds=0, partition=0, offset=0):
    event = dict.fromkeys(ev.EVENT_COLUMNS)
    event.update(
        event_id=event_id,
        user_id=user,
        page_id="p",
        ad_id="a",
        ad_type=ev.AD_TYPES[0],
        event_type="view",
        event_time=T0,
        event_time_ms=int(T0.replace(tzinfo=dt.UTC).timestamp() * 1000),
        campaign_id="c",
        ip_address="10.0.0.1",
    )
    return {
        **event,
        "kafka_timestamp": T0 + dt.timedelta(seconds=seconds),
        "kafka_partition": partition,
        "kafka_offset": offset,
    }


def test_the_first_received_record_counts_and_conflicts_are_flagged(spark):
    rows = [
        record("retried", seconds=5, offset=1),
        record("retried", seconds=2, offset=9),  # earlier in Kafka's time, later offset: this one
        record("buggy", user="u2", seconds=3, partition=1),
        record("buggy", user="u1", seconds=3, partition=0, offset=4),  # same time, lower partition: this one
        record("tie", seconds=1, offset=7),
        record("tie", seconds=1, offset=5),  # same time and partition, lowest offset: this one
        record("tie", seconds=1, offset=9),
        record("single", offset=3),
        record(None, offset=11),
        record(None, offset=12),
    ]
    schema = ", ".join(
        [f"{name} {sql_type}" for name, sql_type in ev.EVENT_COLUMNS.items()]
        + ["kafka_timestamp timestamp", "kafka_partition int", "kafka_offset bigint"]
    )
    frame = spark.createDataFrame([[r[c.split()[0]] for c in schema.split(", ")] for r in rows], schema)

    kept = sorted(
        (r.event_id or "", r.kafka_partition, r.kafka_offset, r[CONFLICTING]) for r in first_received(frame).collect()
    )

    assert kept == [
        ("", 0, 11, False),
        ("", 0, 12, False),
        ("buggy", 0, 4, True),
        ("retried", 0, 9, False),
        ("single", 0, 3, False),
        ("tie", 0, 5, False),
    ]
