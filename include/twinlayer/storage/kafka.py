"""The event log: creating the Kafka topics the speed layer reads and writes, where each partition ends, and its
newest records (the dead letters a person wants to see)."""

from __future__ import annotations

import logging
import time
from typing import Any

# librdkafka's own log (a refused connection, retried every 50 ms) goes here, not to stderr; errors still raise
QUIET = logging.getLogger("twinlayer.kafka.client")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def ensure_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create missing topics (name → partitions); existing ones are left as they are."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="twinlayer-speed-layer")
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items() if name not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing)
            except Exception as exc:  # a concurrent creator wins; anything else re-raises below
                if not {t.name for t in missing} <= set(admin.list_topics()):
                    raise RuntimeError(f"could not create Kafka topics {[t.name for t in missing]}: {exc}") from exc
    finally:
        admin.close()


def end_offsets(bootstrap: str, topic: str, partitions: int | None = None) -> dict[int, int]:
    """Partition → the offset the next record written there will get (the high watermark). Name ``partitions``
    for a topic just created: its metadata may not list them yet, while each offset lookup waits for its leader."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "twinlayer-offsets"}, logger=QUIET)
    try:
        ids = range(partitions) if partitions else consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]) for p in ids}
    finally:
        consumer.close()


def offsets_at(bootstrap: str, topic: str, timestamp_ms: int) -> dict[int, int]:
    """Partition → the offset of its first record Kafka received at or after ``timestamp_ms`` (its end offset when
    it has none); 0 or less means every record Kafka still holds."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "twinlayer-offsets"}, logger=QUIET)
    try:
        ids = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        if timestamp_ms <= 0:
            return {p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0]) for p in ids}
        found = consumer.offsets_for_times([TopicPartition(topic, p, timestamp_ms) for p in ids], timeout=10)
        failed = [f"{tp.partition}: {tp.error}" for tp in found if tp.error is not None]
        if failed:
            raise RuntimeError(f"Kafka could not look up offsets of {topic!r} by time ({'; '.join(failed)})")
        ends = {p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]) for p in ids}
        # OFFSET_END (-1): no record at or after the time
        return {tp.partition: ends[tp.partition] if tp.offset == -1 else int(tp.offset) for tp in found}
    finally:
        consumer.close()


def latest_records(bootstrap: str, topic: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The ``count`` newest records of ``topic`` (across its partitions, by record time), oldest first, each as
    {partition, offset, timestamp_ms, key, value} with key and value as bytes. Nothing is committed. Raises
    RuntimeError when the topic cannot be read, TimeoutError when its records did not all arrive in ``timeout``."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "twinlayer-tail",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",  # an offset retention removed meanwhile: the oldest left, not the end
        },
        logger=QUIET,
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(f"Kafka topic {topic!r}: {metadata.error.str()}")
        ends: dict[int, int] = {}
        starts = []
        for p in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(topic, p, max(low, high - count)))
        records: list[dict[str, Any]] = []
        if starts:
            consumer.assign(starts)
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka topic {topic!r}: partitions {sorted(ends)} not read to their end")
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is not None:
                    raise RuntimeError(f"Kafka topic {topic!r}: {message.error()}")
                p, offset = message.partition(), message.offset()
                if p is None or offset is None:
                    continue
                records.append(
                    {
                        "partition": p,
                        "offset": offset,
                        "timestamp_ms": message.timestamp()[1],
                        "key": message.key(),
                        "value": message.value(),
                    }
                )
                if offset + 1 >= ends.get(p, 0):
                    ends.pop(p, None)
        records.sort(key=lambda r: (r["timestamp_ms"], r["partition"], r["offset"]))
        return records[-count:] if count else []
    finally:
        consumer.close()
