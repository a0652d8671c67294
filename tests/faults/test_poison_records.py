"""Poison input through the real speed layer: every kind of record a broken or hostile producer can write.

Each one must reach the dead-letter topic with its reason (a payload too large to keep is cut to a bound, with its
original length and SHA-256), the job must go on in the same process — no crash, no restart loop — and the views,
the archive and the dead letters must still equal the brute-force truth.
"""

import base64
import hashlib
import json
import time
import uuid

import pytest
from confluent_kafka import Producer

from tests import speed_checks as checks
from tests import truth
from twinlayer.localstack.generator import Workload, produce
from twinlayer.model import events as ev
from twinlayer.speed.dead_letters import MAX_KEPT_BYTES

pytestmark = pytest.mark.integration


def escape_heavy_event() -> bytes:
    """A valid event whose page id is mostly characters JSON must escape (about 10 KiB on the wire)."""
    ad_id = sorted(ev.ad_campaigns())[0]
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "user_id": str(uuid.uuid4()),
            "page_id": '\x01"\\' * 1000,
            "ad_id": ad_id,
            "ad_type": ev.AD_TYPES[0],
            "event_type": "view",
            "event_time": int(time.time() * 1000),
            "ip_address": "10.0.0.1",
        }
    ).encode()


def poison() -> dict[str, bytes | None]:
    """Every kind of bad record, and one valid but escape-heavy event timed now (an older one would be late)."""
    return {
        "control bytes, 300 KB": b"\x01" * 300_000,
        "1.5 MiB of JSON": b'{"event_id":"' + b"x" * (3 * 1024 * 1024 // 2) + b'"}',
        "binary": bytes(range(256)) * 64,
        "escape-heavy JSON, 900 KB": b'{"page_id":"' + b"\\u0001" * 150_000 + b'"}',
        "invalid UTF-8": b"\x80\x81\xc0\xc1" * 100,
        "empty": b"",
        "null value": None,
        "deep nesting": b"[" * 5000 + b"]" * 5000,
        "escape-heavy valid event": escape_heavy_event(),
    }


def send_raw(bootstrap: str, topic: str, values) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 2 * 1024 * 1024})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


def test_poison_records_reach_the_dead_letter_topic_and_the_job_goes_on(settings, spark, speed_layer):
    run = speed_layer().start()
    try:
        checks.produce_warmup(settings, run)
        sent = poison()
        send_raw(settings.kafka_bootstrap, run.topic, sent.values())
        produce(settings.kafka_bootstrap, run.topic, Workload(rate=4000, count=8000, malformed_fraction=0.05, seed=3))
        records = truth.read_topic(settings.kafka_bootstrap, run.topic)
        checks.wait_until_drained(run, len(records))
        time.sleep(2)  # a crash right after the last batch would show here
        assert run.process.poll() is None, run.log_tail()  # the process started above, never restarted
        active = run.metrics()
        assert all(active.get(("twinlayer_speed_query_active", (("query", q),))) == 1.0 for q in ("views", "ingest"))
    finally:
        run.stop()

    classified, expected = checks.expected_speed_cells(records)
    poison_reasons = {
        name: classified.refused.get((r.partition, r.offset))
        for name, value in sent.items()
        for r in records
        if r.payload == value
    }
    assert poison_reasons["control bytes, 300 KB"] == ev.REASON_TOO_LARGE
    assert poison_reasons["1.5 MiB of JSON"] == ev.REASON_TOO_LARGE
    assert poison_reasons["binary"] == ev.REASON_MALFORMED
    assert poison_reasons["null value"] == ev.REASON_MALFORMED
    assert poison_reasons["escape-heavy valid event"] is None  # valid: counted and archived

    stored, _ = checks.speed_cells(settings, run.table)
    checks.assert_cells_match(stored, expected)
    checks.assert_archive_exact(spark, run, classified)
    checks.assert_dead_letters(settings, run, classified)

    # at least once: a replayed micro-batch may send a letter twice; its coordinates identify it
    letters = list(
        {
            (b["partition"], b["offset"]): b
            for b in (json.loads(r.payload) for r in truth.read_topic(settings.kafka_bootstrap, run.dlq_topic))
        }.values()
    )
    undecodable = {base64.b64decode(b["payload_base64"]) for b in letters if "payload_base64" in b}
    assert undecodable == {sent["invalid UTF-8"], sent["binary"]}
    for name in ("control bytes, 300 KB", "escape-heavy JSON, 900 KB", "1.5 MiB of JSON"):
        raw = sent[name]
        (letter,) = [b for b in letters if b.get("payload_sha256") == hashlib.sha256(raw).hexdigest()]
        assert letter["payload_truncated"] is True and letter["payload_bytes"] == len(raw), name
        assert len(letter["payload"].encode()) <= MAX_KEPT_BYTES, name
