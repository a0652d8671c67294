"""The load generator's workload shape and the speed-layer metrics parsing (pure logic)."""

import datetime as dt
import json

import pytest
from prometheus_client import generate_latest

from twinlayer.localstack.generator import EventFactory, Workload, paced
from twinlayer.model import events as ev
from twinlayer.speed.metrics import SpeedMetrics

NOW = 1_790_000_000_000


def payloads(**kwargs):
    workload = Workload(rate=0, count=20_000, **kwargs)
    return list(paced(workload, EventFactory(workload, clock=lambda: NOW)))


def test_same_seed_same_workload_and_fractions_hold():
    first = payloads(late_fraction=0.1, duplicate_fraction=0.05, malformed_fraction=0.05, seed=3)
    assert first == payloads(late_fraction=0.1, duplicate_fraction=0.05, malformed_fraction=0.05, seed=3)
    assert first != payloads(late_fraction=0.1, duplicate_fraction=0.05, malformed_fraction=0.05, seed=4)
    parsed, broken = [], 0
    for payload in first:
        try:
            parsed.append(json.loads(payload))
        except ValueError:
            broken += 1
    late = sum(1 for p in parsed if p.get("event_time") == NOW - 5 * 60 * 1000)
    ids = [p["event_id"] for p in parsed if "event_id" in p]
    duplicates = len(ids) - len(set(ids))
    assert 0.08 < late / len(first) < 0.12
    assert 0.035 < duplicates / len(first) < 0.065
    assert broken > 0


def test_valid_payloads_follow_the_schema():
    ads = ev.ad_campaigns()
    for payload in payloads()[:500]:
        record = json.loads(payload)
        assert set(record) == set(ev.FIELDS)
        assert record["ad_id"] in ads and record["event_type"] in ev.EVENT_TYPES and record["event_time"] == NOW


def test_workload_rejects_impossible_fractions():
    with pytest.raises(ValueError, match="add up to more than 1"):
        Workload(count=1, late_fraction=0.6, malformed_fraction=0.6)
    with pytest.raises(ValueError, match="count or a duration"):
        Workload()


def test_progress_event_becomes_metrics():
    metrics = SpeedMetrics()
    assert 'twinlayer_speed_query_ready{query="views"}' not in generate_latest(metrics.registry).decode()
    metrics.record_progress(
        {
            "name": "views",
            "batchId": 12,
            "numInputRows": 500,
            "inputRowsPerSecond": 250.0,
            "processedRowsPerSecond": 400.0,
            "durationMs": {"triggerExecution": 1250},
            "eventTime": {"watermark": "2026-11-24T00:00:00.000Z"},
            "stateOperators": [
                {"memoryUsedBytes": 4000, "numRowsDroppedByWatermark": 3},
                {"memoryUsedBytes": 200, "numRowsDroppedByWatermark": 1},
            ],
            "sources": [
                {
                    "endOffset": json.dumps({"events": {"0": 90, "1": 100}}),
                    "latestOffset": json.dumps({"events": {"0": 100, "1": 100}}),
                }
            ],
        }
    )
    text = generate_latest(metrics.registry).decode()
    assert 'twinlayer_speed_late_events_dropped_total{query="views"} 4.0' in text
    assert 'twinlayer_speed_state_memory_bytes{query="views"} 4200.0' in text
    assert 'twinlayer_speed_kafka_lag_records{partition="0",query="views",topic="events"} 10.0' in text
    assert 'twinlayer_speed_kafka_lag_records{partition="1",query="views",topic="events"} 0.0' in text
    assert 'twinlayer_speed_batch_id{query="views"} 12.0' in text
    assert 'twinlayer_speed_watermark_timestamp_seconds{query="views"} 1.7954784e+09' in text
    assert 'twinlayer_speed_query_ready{query="views"} 1.0' in text  # through a micro-batch: warm


def test_freshness_counts_each_window_end_once_when_the_views_query_passes_it():
    metrics = SpeedMetrics()

    def progress(max_event, now):
        metrics.observe_freshness(max_event, now=now)
        return {s.name: s.value for f in metrics.freshness.collect() for s in f.samples}

    base = 1_790_000_040  # a multiple of 60 s

    def iso(seconds):
        return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()

    assert progress(iso(base + 5), now=base + 6)["twinlayer_speed_freshness_seconds_count"] == 0  # sets the frontier
    sample = progress(iso(base + 25), now=base + 27)  # passes the 10 s ends base+10, base+20
    assert sample["twinlayer_speed_freshness_seconds_count"] == 2
    assert sample["twinlayer_speed_freshness_seconds_sum"] == pytest.approx((27 - 10) + (27 - 20))
    sample = progress(iso(base + 24), now=base + 30)  # an older max moves nothing
    assert sample["twinlayer_speed_freshness_seconds_count"] == 2
    sample = progress(iso(base + 61), now=base + 63)  # 10 s ends 30..60 and the 60 s end at base+60
    assert sample["twinlayer_speed_freshness_seconds_count"] == 2 + 4 + 1
    assert sample["twinlayer_speed_freshness_seconds_sum"] == pytest.approx(
        24 + sum(63 - e for e in (30, 40, 50, 60)) + (63 - 60)
    )


def test_progress_of_the_views_query_feeds_freshness():
    metrics = SpeedMetrics()
    for max_event in ("2026-11-24T00:00:05.000Z", "2026-11-24T00:00:15.000Z"):
        metrics.record_progress(
            {
                "name": "views",
                "batchId": 1,
                "numInputRows": 1,
                "eventTime": {"max": max_event, "watermark": "2026-11-24T00:00:00.000Z"},
            }
        )
        metrics.record_progress(
            {"name": "archive", "batchId": 1, "numInputRows": 1, "eventTime": {"max": "2026-11-24T00:59:00.000Z"}}
        )
    assert "twinlayer_speed_freshness_seconds_count 1.0" in generate_latest(metrics.registry).decode()
