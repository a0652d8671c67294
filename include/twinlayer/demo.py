"""`make demo`: bring the embedded stack up, send sample events through it, and print where to look."""

from __future__ import annotations

import json
import time

from twinlayer.stack import Stack

DEMO_TOPIC = "twinlayer-demo"
DEMO_TABLE = "twinlayer_demo"


def run(stack: Stack) -> int:
    import happybase
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    settings = stack.settings
    print("== bringing the stack up")
    stack.up()

    print(f"== sending 1000 sample events to Kafka topic {DEMO_TOPIC!r}")
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    now_ms = int(time.time() * 1000)
    for i in range(1000):
        event = {"event_id": f"demo-{now_ms}-{i}", "campaign": f"c{i % 10}", "event_time": now_ms + i}
        producer.send(DEMO_TOPIC, json.dumps(event).encode())
    producer.flush(30)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    partitions = [TopicPartition(DEMO_TOPIC, p) for p in consumer.partitions_for_topic(DEMO_TOPIC)]
    total = sum(consumer.end_offsets(partitions).values())
    consumer.close()
    print(f"   topic now holds {total} events")

    print(f"== writing one row to HBase table {DEMO_TABLE!r} through Thrift")
    connection = happybase.Connection(settings.host, settings.thrift_port)
    try:
        if DEMO_TABLE.encode() not in connection.tables():
            connection.create_table(DEMO_TABLE, {"v": dict(max_versions=1)})
        table = connection.table(DEMO_TABLE)
        table.put(b"demo", {b"v:events_in_kafka": str(total).encode()}, timestamp=now_ms)
        print(f"   read back: {table.row(b'demo')}")
    finally:
        connection.close()

    print_urls(stack)
    return 0


def print_urls(stack: Stack) -> None:
    s = stack.settings
    print("== where to look")
    print(f"   Airflow UI      {s.url('airflow_port')}/")
    print(f"   Prometheus      {s.url('prometheus_port')}/")
    print(f"   Alertmanager    {s.url('alertmanager_port')}/")
    print(f"   Pushgateway     {s.url('pushgateway_port')}/")
    print(f"   Kafka           {s.kafka_bootstrap}")
    print(f"   HBase Thrift    {s.host}:{s.thrift_port}")
    print(f"   logs            {s.logs_dir}/   (make logs)")
    print("   stop with       make down")
