"""Dead-letter envelopes (pure): the record key names the source record, and no payload makes an envelope too
large for Kafka — a long one is cut with its length and hash kept."""

import base64
import hashlib
import json

from twinlayer.speed.dead_letters import MAX_KEPT_BYTES, envelope


def test_an_envelope_keeps_reason_payload_and_coordinates():
    key, value = envelope("events", "malformed_json", "{not json", 3, 1234, 1_790_000_000_000)
    assert key == b"events:3:1234"
    assert json.loads(value) == {
        "reason": "malformed_json",
        "payload": "{not json",
        "topic": "events",
        "partition": 3,
        "offset": 1234,
        "kafka_timestamp_ms": 1_790_000_000_000,
    }


def test_a_huge_escape_heavy_payload_is_cut_with_its_length_and_hash():
    payload = "\x01" * 300_000  # JSON escaping makes each byte six characters
    _, value = envelope("events", "payload_too_large", payload, 0, 7, None)
    body = json.loads(value)
    assert len(value) < 8 * MAX_KEPT_BYTES
    assert body["payload_truncated"] and body["payload_bytes"] == 300_000
    assert body["payload_sha256"] == hashlib.sha256(payload.encode()).hexdigest()
    assert body["payload"] == payload[:MAX_KEPT_BYTES]


def test_a_null_value_and_invalid_utf8_still_make_an_envelope():
    _, value = envelope("events", "malformed_json", None, 0, 1, None)
    assert json.loads(value)["payload"] is None
    _, value = envelope("events", "malformed_json", "caf\udce9", 0, 2, None)  # an undecodable byte, as Spark keeps it
    assert json.loads(value)["offset"] == 2


def test_bytes_that_are_not_utf8_travel_exactly_in_base64():
    raw = b"\x80\x81\xc0\xc1" * 100
    _, value = envelope("events", "malformed_json", raw, 0, 3, None)
    body = json.loads(value)
    assert base64.b64decode(body["payload_base64"]) == raw and "\ufffd" in body["payload"]
    _, value = envelope("events", "malformed_json", b'{"ok": "caf\xc3\xa9"', 0, 4, None)
    assert json.loads(value)["payload"] == '{"ok": "café"' and "payload_base64" not in json.loads(value)


def test_a_cut_inside_the_last_character_keeps_the_text_without_base64():
    raw = b"a" + ("é" * MAX_KEPT_BYTES).encode()  # two bytes each, one byte in front: the bound cuts an "é" in two
    _, value = envelope("events", "payload_too_large", raw, 0, 5, None)
    body = json.loads(value)
    assert "payload_base64" not in body and body["payload_truncated"]
    assert body["payload"] == "a" + "é" * ((MAX_KEPT_BYTES - 1) // 2)


def test_an_invalid_byte_at_the_cut_still_travels_in_base64():
    raw = b"a" * (MAX_KEPT_BYTES - 1) + b"\xff" + b"zzzz"
    _, value = envelope("events", "payload_too_large", raw, 0, 6, None)
    body = json.loads(value)
    assert base64.b64decode(body["payload_base64"]) == raw[:MAX_KEPT_BYTES] and body["payload_bytes"] == len(raw)
