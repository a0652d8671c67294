"""Warm-up: the speed layer pays its first micro-batch before it says it is ready.

The first micro-batch of a fresh JVM costs about ten seconds on two cores whatever its size (class loading, code
generation, the JIT, the state store's native library, the Kafka consumer); a second one of the same plan costs about
one. Measured: the views query's first batch after a restart took 11.5 s for 5,000 events, 2.7 s (state restore
included) when a warm-up of the same plan over 4,000 other events ran first in the same JVM.

So before the real queries start, the same transformations run once, `availableNow`, over a few thousand generated
events in a topic of the speed layer's own (``<events topic>-warmup``), into sinks that keep nothing: a temporary
checkpoint and a temporary archive epoch; no HBase cell, no dead letter, no archived record. The speed layer reports
ready only after its real queries have started, so `make up` returns with a warm speed layer.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pyspark.sql.streaming import StreamingQuery

from twinlayer.model import events as ev
from twinlayer.storage.kafka import end_offsets, ensure_topics

log = logging.getLogger(__name__)

EVENTS = 4000
REFUSED_EVERY = 50  # a few refused records, so the diagnosis path is compiled too


def warmup_topic(events_topic: str) -> str:
    return f"{events_topic}-warmup"


def payloads(count: int, now_ms: int, seed: int = 0) -> list[bytes]:
    """Events of the last minute across every ad, type and a thousand users; one in REFUSED_EVERY malformed."""
    rng = random.Random(seed)
    ads = sorted(ev.ad_campaigns())
    out = []
    for i in range(count):
        if i % REFUSED_EVERY == REFUSED_EVERY - 1:
            out.append(b"{not json")
            continue
        record = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "user_id": f"warmup-{rng.randrange(1000)}",
            "page_id": "warmup",
            "ad_id": rng.choice(ads),
            **{name: rng.choice(sorted(allowed)) for name, allowed in ev.ENUMS.items()},
            "event_time": now_ms - rng.randrange(60_000),
            "ip_address": "127.0.0.1",
        }
        out.append(json.dumps(record).encode())
    return out


def _send(bootstrap: str, topic: str, partitions: int, records: list[bytes]) -> dict[int, int]:
    """Write ``records`` to ``topic``; returns each partition's first offset of them (Spark's startingOffsets)."""
    from confluent_kafka import Producer

    starting = end_offsets(bootstrap, topic, partitions)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for index, record in enumerate(records):
        producer.produce(topic, record, partition=index % partitions)
    if producer.flush(30) != 0:
        raise RuntimeError(f"warm-up: could not write to Kafka topic {topic!r}")
    return starting


def warm_up(
    bootstrap: str,
    events_topic: str,
    partitions: int,
    start: Callable[[str, Path], list[StreamingQuery]],
    timeout: float = 180.0,
) -> float:
    """Send generated events to the warm-up topic and run ``start(starting_offsets, scratch_folder)``'s queries to
    their end; returns the seconds it took. ``start`` starts `availableNow` queries that write under the scratch
    folder only."""
    started = time.monotonic()
    topic = warmup_topic(events_topic)
    ensure_topics(bootstrap, {topic: partitions})
    first = _send(bootstrap, topic, partitions, payloads(EVENTS, int(time.time() * 1000)))
    offsets = json.dumps({topic: {str(p): o for p, o in first.items()}})
    with tempfile.TemporaryDirectory(prefix="twinlayer-warmup-") as scratch:
        queries = start(offsets, Path(scratch))
        try:
            for query in queries:
                if not query.awaitTermination(max(int(timeout - (time.monotonic() - started)), 1)):
                    raise TimeoutError(f"warm-up query {query.name} did not finish within {timeout:.0f}s")
        finally:
            for query in queries:
                query.stop()
    seconds = time.monotonic() - started
    log.info("warm-up: %d events through every query in %.1fs", EVENTS, seconds)
    return seconds
