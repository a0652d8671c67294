"""The dead-letter topic: every record the parser refused, with its reason, its payload and where Kafka kept it.

Envelopes are built here (pure) and sent by the speed layer's driver after its ingest micro-batch set them aside
(at least once: a replayed batch sends them again; the record key ``topic:partition:offset`` identifies a record).
A payload is kept whole up to ``MAX_KEPT_BYTES``; a longer one is cut there and the envelope carries its original
length and SHA-256, so no record — however large or strange — makes the envelope too large for Kafka. Bytes that are
not UTF-8 cannot travel as JSON text: the envelope then also carries the kept bytes exactly, in base64.
"""

from __future__ import annotations

import base64
import hashlib
import json

MAX_KEPT_BYTES = 64 * 1024


def envelope(
    topic: str,
    reason: str,
    payload: bytes | str | None,
    partition: int,
    offset: int,
    kafka_timestamp_ms: int | None,
) -> tuple[bytes, bytes]:
    """(record key, record value) of one dead letter; ``payload`` is the record's value as Kafka holds it (bytes),
    or as text (undecodable bytes as surrogate escapes), or None for a null value."""
    raw = payload.encode("utf-8", errors="surrogateescape") if isinstance(payload, str) else (payload or b"")
    kept = raw[:MAX_KEPT_BYTES]
    try:
        text = kept.decode("utf-8")
        exact = True
    except UnicodeDecodeError as error:
        # a cut inside the last character (a valid start, its end cut off) is no reason to doubt the rest
        exact = len(raw) > MAX_KEPT_BYTES and error.reason == "unexpected end of data"
        text = kept.decode("utf-8", errors="ignore" if exact else "replace")
    value: dict[str, object] = {
        "reason": reason,
        "payload": None if payload is None else text,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "kafka_timestamp_ms": kafka_timestamp_ms,
    }
    if not exact:
        value["payload_base64"] = base64.b64encode(kept).decode("ascii")
    if len(raw) > MAX_KEPT_BYTES:
        value.update(payload_truncated=True, payload_bytes=len(raw), payload_sha256=hashlib.sha256(raw).hexdigest())
    key = f"{topic}:{partition}:{offset}".encode()
    return key, json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", errors="replace")


class DeadLetterSender:
    """Sends envelopes with librdkafka and waits until Kafka has every one; raises if any was refused, so the
    micro-batch fails and is replayed rather than losing a dead letter."""

    def __init__(self, bootstrap: str, dlq_topic: str) -> None:
        from confluent_kafka import Producer

        self.dlq_topic = dlq_topic
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": 2 * 1024 * 1024,
                "enable.idempotence": True,
            }
        )

    def send(self, envelopes) -> int:
        failures: list[str] = []

        def delivered(error, _message) -> None:
            if error is not None:
                failures.append(str(error))

        sent = 0
        for key, value in envelopes:
            while True:
                try:
                    self.producer.produce(self.dlq_topic, key=key, value=value, on_delivery=delivered)
                    break
                except BufferError:
                    self.producer.poll(0.1)
            sent += 1
        remaining = self.producer.flush(60)
        if failures or remaining:
            raise RuntimeError(
                f"{len(failures) + remaining} of {sent} dead letters did not reach {self.dlq_topic}: {failures[:3]}"
            )
        return sent
