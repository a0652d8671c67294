"""A reproducible load generator of Yahoo-Streaming-Benchmark-shaped ad events, with planted faults.

Fractions of late events (older than the speed layer's watermark, still valid for the archive), duplicates (the
same payload sent again) and malformed records (each kind the parser refuses) are drawn from one seeded random
generator, so a seed names a workload. Payloads are formatted from a template rather than ``json.dumps`` — the
JSON encoder, not Kafka, is what limits a Python producer.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator

from twinlayer.model import events as ev

TEMPLATE = (
    '{{"event_id":"{event_id}","user_id":"{user_id}","page_id":"{page_id}","ad_id":"{ad_id}",'
    '"ad_type":"{ad_type}","event_type":"{event_type}","event_time":{event_time},"ip_address":"{ip}"}}'
)

MALFORMED_KINDS = ("bad_json", "missing_field", "wrong_type", "unknown_ad", "huge", "future", "ancient", "bad_enum")


@dataclasses.dataclass(frozen=True)
class Workload:
    rate: float = 1000.0  # events per second; 0 means as fast as possible
    count: int | None = None
    duration: float | None = None
    late_fraction: float = 0.0
    late_by_ms: int = 5 * 60 * 1000
    duplicate_fraction: float = 0.0
    malformed_fraction: float = 0.0
    seed: int = 42
    users: int = 10_000

    def __post_init__(self) -> None:
        for name in ("late_fraction", "duplicate_fraction", "malformed_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.late_fraction + self.duplicate_fraction + self.malformed_fraction > 1.0:
            raise ValueError("late, duplicate and malformed fractions add up to more than 1")
        if self.rate < 0:
            raise ValueError("rate must be >= 0")
        if self.count is None and self.duration is None:
            raise ValueError("give a count or a duration")


class EventFactory:
    """Payloads for one workload; ``clock`` (epoch ms) is injectable for tests."""

    def __init__(self, workload: Workload, clock: Callable[[], int] | None = None) -> None:
        self.workload = workload
        self.random = random.Random(workload.seed)
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.ads = sorted(ev.ad_campaigns())
        self.users = [str(uuid.UUID(int=self.random.getrandbits(128), version=4)) for _ in range(workload.users)]
        self.pages = [str(uuid.UUID(int=self.random.getrandbits(128), version=4)) for _ in range(100)]
        self.sent: list[bytes] = []
        self.sequence = 0
        self.run_id = uuid.UUID(int=self.random.getrandbits(128), version=4).hex[:12]

    def _fields(self, now_ms: int) -> dict:
        r = self.random
        self.sequence += 1
        return {
            "event_id": f"{self.run_id}-{self.sequence}",
            "user_id": r.choice(self.users),
            "page_id": r.choice(self.pages),
            "ad_id": r.choice(self.ads),
            "ad_type": r.choice(ev.AD_TYPES),
            "event_type": r.choice(ev.EVENT_TYPES),
            "event_time": now_ms,
            "ip": f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}",
        }

    def _malformed(self, now_ms: int) -> bytes:
        kind = self.random.choice(MALFORMED_KINDS)
        fields = self._fields(now_ms)
        if kind == "bad_json":
            return TEMPLATE.format(**fields)[:-7].encode()
        if kind == "missing_field":
            record = json.loads(TEMPLATE.format(**fields))
            del record[self.random.choice(list(ev.FIELDS))]
            return json.dumps(record).encode()
        if kind == "wrong_type":
            return TEMPLATE.format(**{**fields, "event_time": '"not-a-time"'}).encode()
        if kind == "unknown_ad":
            fields["ad_id"] = "00000000-0000-0000-0000-000000000000"
        elif kind == "huge":
            fields["page_id"] = "x" * (ev.MAX_PAYLOAD_BYTES + 1)
        elif kind == "future":
            fields["event_time"] = now_ms + ev.MAX_FUTURE_MS + 3_600_000
        elif kind == "ancient":
            fields["event_time"] = now_ms - ev.MAX_AGE_MS - 3_600_000
        elif kind == "bad_enum":
            fields["event_type"] = "hover"
        return TEMPLATE.format(**fields).encode()

    def next_payload(self) -> bytes:
        now_ms = self.clock()
        w = self.workload
        roll = self.random.random()
        if roll < w.malformed_fraction:
            return self._malformed(now_ms)
        roll -= w.malformed_fraction
        if roll < w.duplicate_fraction and self.sent:
            return self.random.choice(self.sent[-1000:])
        roll -= w.duplicate_fraction
        event_time = now_ms - w.late_by_ms if roll < w.late_fraction else now_ms
        payload = TEMPLATE.format(**{**self._fields(now_ms), "event_time": event_time}).encode()
        if w.duplicate_fraction:
            self.sent.append(payload)
            if len(self.sent) > 5000:
                del self.sent[:-1000]
        return payload


def paced(workload: Workload, factory: EventFactory) -> Iterator[bytes]:
    """Payloads at the workload's rate (in 10 ms slices) until its count or duration is reached."""
    started = time.monotonic()
    produced = 0
    limit = workload.count
    while limit is None or produced < limit:
        elapsed = time.monotonic() - started
        if workload.duration is not None and elapsed >= workload.duration:
            return
        target = produced + 1000 if workload.rate == 0 else int(workload.rate * (elapsed + 0.01))
        if limit is not None:
            target = min(target, limit)
        if target <= produced:
            time.sleep(0.002)
            continue
        for _ in range(target - produced):
            yield factory.next_payload()
        produced = target


class KafkaPythonSender:
    """kafka-python: pure Python, about 17k small records/s on one core here."""

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaProducer

        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=512 * 1024, max_request_size=2 * 1024 * 1024
        )
        self.errors: list[str] = []

    def _failed(self, error: Exception) -> None:
        if len(self.errors) < 10:
            self.errors.append(repr(error))

    def send(self, topic: str, payload: bytes) -> None:
        self.producer.send(topic, payload).add_errback(self._failed)

    def close(self) -> None:
        self.producer.flush(timeout=120)
        self.producer.close(timeout=30)
        if self.errors:
            raise RuntimeError(f"records not delivered; first errors: {self.errors}")


class LibrdkafkaSender:
    """confluent-kafka (librdkafka in C): about 150k records/s on one core here, the payload formatting included."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self.errors: list[str] = []
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": 1,
                "linger.ms": 20,
                "batch.size": 1_000_000,
                "queue.buffering.max.messages": 1_000_000,
                "message.max.bytes": 2 * 1024 * 1024,
                "compression.type": "lz4",
            }
        )
        self.pending = 0

    def _delivered(self, error, message) -> None:
        if error is not None and len(self.errors) < 10:
            self.errors.append(str(error))

    def send(self, topic: str, payload: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, payload, on_delivery=self._delivered)
                break
            except BufferError:
                self.producer.poll(0.01)
        self.pending += 1
        if self.pending % 10_000 == 0:
            self.producer.poll(0)

    def close(self) -> None:
        remaining = self.producer.flush(120)
        if remaining or self.errors:
            raise RuntimeError(f"{remaining} records not delivered; first errors: {self.errors}")


SENDERS: dict[str, type[LibrdkafkaSender | KafkaPythonSender]] = {
    "librdkafka": LibrdkafkaSender,
    "kafka-python": KafkaPythonSender,
}


def produce(
    bootstrap: str,
    topic: str,
    workload: Workload,
    client: str = "librdkafka",
    clock=None,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Send the workload to Kafka; returns how many records went and the rate achieved. ``on_progress`` hears the
    number sent so far every 10,000 records and at the end."""
    if client not in SENDERS:
        raise ValueError(f"unknown client {client!r}; choose one of {', '.join(SENDERS)}")
    sender = SENDERS[client](bootstrap)
    factory = EventFactory(workload, clock)
    started = time.monotonic()
    sent = 0
    try:
        for payload in paced(workload, factory):
            sender.send(topic, payload)
            sent += 1
            if on_progress is not None and sent % 10_000 == 0:
                on_progress(sent)
    finally:
        sender.close()
    if on_progress is not None:
        on_progress(sent)
    seconds = time.monotonic() - started
    return {"client": client, "sent": sent, "seconds": round(seconds, 3), "events_per_second": round(sent / seconds, 1)}
