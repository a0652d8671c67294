"""The event log: creating the Kafka topics the speed layer reads and writes, and where each partition ends."""

from __future__ import annotations


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

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "twinlayer-offsets"})
    try:
        ids = range(partitions) if partitions else consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]) for p in ids}
    finally:
        consumer.close()
