"""Spark Structured Streaming reads a real Kafka topic through the connector jars fetched from Maven Central."""

import json

import pytest
from kafka import KafkaProducer

pytestmark = pytest.mark.integration


def test_streaming_query_reads_exactly_what_was_produced(stack, settings, spark, unique_name, tmp_path):
    sent = {f"key-{i}": {"seq": i, "user": f"u{i % 7}"} for i in range(300)}
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        for key, value in sent.items():
            producer.send(unique_name, key=key.encode(), value=json.dumps(value).encode())
        producer.flush(timeout=30)
    finally:
        producer.close()

    stream = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", unique_name)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value")
    )
    query = (
        stream.writeStream.format("memory")
        .queryName(unique_name)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    try:
        query.processAllAvailable()
        rows = spark.sql(f"SELECT key, value FROM {unique_name}").collect()
    finally:
        query.stop()

    assert len(rows) == len(sent)
    assert {row.key: json.loads(row.value) for row in rows} == sent
