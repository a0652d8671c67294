"""Brute-force truth in plain Python, written independently of the Spark code it checks.

Reads every record of a Kafka topic, decides validity with its own rules, and computes every view cell with
dictionaries. Tests compare what the speed layer (and later the batch layer) stored against this.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict

from kafka import KafkaConsumer, TopicPartition

from twinlayer.model import events as ev
from twinlayer.model.views import VIEWS, View


@dataclasses.dataclass
class Record:
    partition: int
    offset: int
    timestamp_ms: int
    payload: bytes


def read_topic(bootstrap: str, topic: str, since_ms: int | None = None) -> list[Record]:
    """Every record of the topic, or those Kafka received from ``since_ms`` on."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        if since_ms is not None:
            for tp, found in consumer.offsets_for_times(dict.fromkeys(partitions, since_ms)).items():
                consumer.seek(tp, end[tp] if found is None else found.offset)
        records = []
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=2000).values():
                records.extend(Record(m.partition, m.offset, m.timestamp, m.value) for m in batch)
        return records
    finally:
        consumer.close()


def refusal(record: Record, ads: dict[str, str]) -> str | None:
    """Why the speed layer must refuse this record, or None; same order of checks as documented in transforms."""
    payload = record.payload or b""  # a null value (a tombstone) is no JSON
    if len(payload) > ev.MAX_PAYLOAD_BYTES:
        return ev.REASON_TOO_LARGE
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # nested deeper than any parser takes
        return ev.REASON_MALFORMED
    if not isinstance(data, dict):
        return ev.REASON_NOT_OBJECT
    for name in ev.FIELDS:
        if data.get(name) is None:
            return f"{ev.REASON_MISSING}:{name}"
    for name, sql_type in ev.FIELDS.items():
        value = data[name]
        if sql_type == "bigint" and not (isinstance(value, int) and not isinstance(value, bool)):
            return f"{ev.REASON_WRONG_TYPE}:{name}"
    for name, allowed in ev.ENUMS.items():
        if data[name] not in allowed:
            return f"{ev.REASON_BAD_VALUE}:{name}"
    if data["ad_id"] not in ads:
        return ev.REASON_UNKNOWN_AD
    event_time = int(data["event_time"])
    if event_time < record.timestamp_ms - ev.MAX_AGE_MS:
        return ev.REASON_TOO_OLD
    if event_time > record.timestamp_ms + ev.MAX_FUTURE_MS:
        return ev.REASON_IN_FUTURE
    return None


@dataclasses.dataclass
class Truth:
    valid: list[tuple[Record, dict]]
    refused: dict[tuple[int, int], str]


def classify(records: list[Record]) -> Truth:
    ads = ev.ad_campaigns()
    valid, refused = [], {}
    for record in records:
        reason = refusal(record, ads)
        if reason:
            refused[(record.partition, record.offset)] = reason
        else:
            data = json.loads(record.payload)
            data["event_time"] = int(data["event_time"])
            data["campaign_id"] = ads[data["ad_id"]]
            valid.append((record, data))
    return Truth(valid, refused)


def view_cells(events: list[dict], views: tuple[View, ...] = VIEWS) -> dict[tuple[str, str, int], dict]:
    """(view, key, window start ms) → {measure: value}, distinct measures as exact sets' sizes."""
    cells: dict[tuple[str, str, int], dict] = {}
    accumulators: dict[tuple[str, str, int], dict] = defaultdict(dict)
    for event in events:
        for view in views:
            if view.filter is not None:
                match = re.fullmatch(r"event_type = '(\w+)'", view.filter)
                if match is None:
                    raise NotImplementedError(f"truth does not know the filter {view.filter!r}")
                if event["event_type"] != match.group(1):
                    continue
            key = "|".join(str(event[d]) for d in view.dimensions)
            start = event["event_time"] - event["event_time"] % view.window_ms
            acc = accumulators[(view.name, key, start)]
            for m in view.measures:
                if m.kind == "count":
                    acc[m.name] = acc.get(m.name, 0) + 1
                elif m.kind == "sum":
                    acc[m.name] = acc.get(m.name, 0) + event[m.column]
                elif m.kind == "min":
                    acc[m.name] = min(acc.get(m.name, event[_col(m.column)]), event[_col(m.column)])
                elif m.kind == "max":
                    acc[m.name] = max(acc.get(m.name, event[_col(m.column)]), event[_col(m.column)])
                elif m.kind == "distinct":
                    acc.setdefault(m.name, set()).add(event[m.column])
    for cell, acc in accumulators.items():
        cells[cell] = {name: len(v) if isinstance(v, set) else v for name, v in acc.items()}
    return cells


def _col(column: str) -> str:
    return "event_time" if column == "event_time_ms" else column


def event_time_of(record: Record) -> int | None:
    """The event time of a record that parses, else None (for selecting an hour's records)."""
    try:
        value = json.loads(record.payload).get("event_time")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def first_received(valid: list[tuple[Record, dict]]) -> list[dict]:
    """One event per event id: the record Kafka received first (timestamp, then partition, then offset)."""
    ordered = sorted(valid, key=lambda pair: (pair[0].timestamp_ms, pair[0].partition, pair[0].offset))
    return dedupe_first([event for _, event in ordered])


def conflicting_ids(valid: list[tuple[Record, dict]]) -> set[str]:
    """Event ids sent more than once with different contents."""
    contents: dict[str, list[dict]] = defaultdict(list)
    for _, event in valid:
        contents[event["event_id"]].append(event)
    return {event_id for event_id, seen in contents.items() if any(other != seen[0] for other in seen[1:])}


def dedupe_first(events: list[dict]) -> list[dict]:
    seen, kept = set(), []
    for event in events:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            kept.append(event)
    return kept
