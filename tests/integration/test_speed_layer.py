"""The real speed layer end to end: generated events with planted faults through Kafka, Spark and HBase.

Every HBase cell must equal the brute-force truth of tests/truth.py; the archive must hold every valid record
exactly once; every refused record must be in the dead-letter topic with its reason. A SIGKILL mid-stream and a
restart on the checkpoints must change none of that, and leave one version per cell.
"""

import threading
import time

import pytest

from tests import truth
from tests.speed_checks import (
    LATE_BY_MS,
    assert_archive_exact,
    assert_cells_match,
    assert_dead_letters,
    expected_speed_cells,
    produce_warmup,
    speed_cells,
    wait_until_drained,
)
from twinlayer.localstack.generator import Workload, produce

pytestmark = pytest.mark.integration

WORKLOAD = {
    "rate": 4000,
    "count": 24_000,
    "late_fraction": 0.03,
    "late_by_ms": LATE_BY_MS,
    "duplicate_fraction": 0.03,
    "malformed_fraction": 0.03,
    "seed": 7,
}


def test_speed_layer_matches_brute_force_truth(settings, spark, speed_layer):
    run = speed_layer().start()
    try:
        produce_warmup(settings, run)
        produce(settings.kafka_bootstrap, run.topic, Workload(**WORKLOAD))
        records = truth.read_topic(settings.kafka_bootstrap, run.topic)
        wait_until_drained(run, len(records))
        metrics = run.metrics()
    finally:
        run.stop()

    classified, expected = expected_speed_cells(records)
    stored, _ = speed_cells(settings, run.table)
    assert_cells_match(stored, expected)
    assert_archive_exact(spark, run, classified)
    assert_dead_letters(settings, run, classified)
    late = sum(1 for r, e in classified.valid if e["event_time"] < r.timestamp_ms - LATE_BY_MS / 2)
    assert late > 0 and metrics[("twinlayer_speed_late_events_dropped_total", (("query", "views"),))] >= late
    dlq_total = sum(v for (name, _), v in metrics.items() if name == "twinlayer_speed_dead_letters_total")
    assert dlq_total == len(classified.refused)


def test_sigkill_mid_stream_and_restart_on_checkpoint_changes_nothing(settings, spark, speed_layer):
    run = speed_layer().start()
    producer = threading.Thread(
        target=produce,
        args=(settings.kafka_bootstrap, run.topic, Workload(**{**WORKLOAD, "rate": 3000, "count": 60_000, "seed": 11})),
    )
    try:
        produce_warmup(settings, run)
        producer.start()
        # 20 s of production: the kill lands mid-stream even when a loaded box makes micro-batches take seconds
        run.wait_until(lambda m: run.processed("views") > 5000, 120, "some batches before the crash")
        run.kill()  # while events are still arriving, and whatever micro-batch is running is cut short
        killed_while_producing = producer.is_alive()
        run.start()
        producer.join(timeout=120)
        records = truth.read_topic(settings.kafka_bootstrap, run.topic)
        # after a restart the counters start again: wait for the checkpointed queries to reach the end of the topic
        run.wait_until(
            lambda m: (
                all(v == 0 for (name, labels), v in m.items() if name == "twinlayer_speed_kafka_lag_records")
                and run.processed("views") > 0
                and run.processed("ingest") > 0
            ),
            240,
            "the restarted layer to catch up",
        )
        # lag 0 is measured against the offsets known when the last batch was planned: give each query one more
        # trigger (ingest every 10 s) to take what arrived meanwhile
        time.sleep(12)
    finally:
        run.stop()

    assert killed_while_producing
    classified, expected = expected_speed_cells(records)
    stored, versions = speed_cells(settings, run.table)
    assert_cells_match(stored, expected)
    assert set(versions.values()) == {1}, "a replayed micro-batch created a second version of a cell"
    assert_archive_exact(spark, run, classified)
    assert_dead_letters(settings, run, classified)


def test_lost_checkpoint_is_refused_unless_reset_is_asked(settings, spark, speed_layer):
    """Losing the ingest query's checkpoint alone is refused like losing all of them; a reset start killed before its
    first commit starts again where the reset said, not from Kafka's oldest record (which would archive every
    record of the first epoch a second time)."""
    import shutil

    run = speed_layer()
    run.start()
    try:
        produce(settings.kafka_bootstrap, run.topic, Workload(rate=2000, count=1000, seed=3))
        run.wait_until(lambda m: run.processed("ingest") >= 1000, 120, "the archive to take the first events")
    finally:
        run.stop()
    shutil.rmtree(run.checkpoint_dir / "ingest")
    run.start(wait=False)
    assert run.process.wait(timeout=180) == 3
    assert "ingest query's checkpoint" in run.log_tail() and "--reset-checkpoints" in run.log_tail()

    shutil.rmtree(run.checkpoint_dir)
    run.start(wait=False)
    assert run.process.wait(timeout=180) == 3
    assert "checkpoints" in run.log_tail() and "--reset-checkpoints" in run.log_tail()

    marker = run.checkpoint_dir / "archive_epoch"
    run.start("--reset-checkpoints", wait=False)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert time.monotonic() < deadline and run.process.poll() is None, run.log_tail()
        time.sleep(0.05)
    run.kill()  # before any query committed a micro-batch of the new epoch
    assert not list(run.archive_dir.glob("epoch=0002/_commits/*.json"))

    run.start()
    try:
        produce(settings.kafka_bootstrap, run.topic, Workload(rate=2000, count=500, seed=4))
        run.wait_until(lambda m: run.processed("ingest") >= 500, 120, "the new epoch to archive new events")
        time.sleep(1)
    finally:
        run.stop()
    epochs = sorted(p.name for p in run.archive_dir.glob("epoch=*"))
    assert epochs == ["epoch=0001", "epoch=0002"]
    assert_archive_exact(spark, run, truth.classify(truth.read_topic(settings.kafka_bootstrap, run.topic)))
