"""Kafka broker (KRaft, from Maven jars) round trip with kafka-python."""

import json

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration


def test_produced_records_are_read_back_exactly(stack, settings, unique_name):
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(unique_name, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    sent = [{"seq": i, "payload": f"event-{i}"} for i in range(500)]
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", value_serializer=lambda v: json.dumps(v).encode()
    )
    try:
        for record in sent:
            producer.send(unique_name, value=record, key=str(record["seq"]).encode())
        producer.flush(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
        value_deserializer=json.loads,
    )
    try:
        partitions = [TopicPartition(unique_name, p) for p in consumer.partitions_for_topic(unique_name)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        received = [message.value for message in consumer]
        end_offsets = consumer.end_offsets(partitions)
    finally:
        consumer.close()

    assert len(received) == len(sent)
    assert sorted(received, key=lambda r: r["seq"]) == sent
    assert sum(end_offsets.values()) == len(sent)
