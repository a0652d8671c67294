"""Crashes of the real speed layer while events flow: SIGKILL three times in a row (once while it recovers from the
one before), a crash between a micro-batch's HBase write and its checkpoint commit, and lost checkpoints.

Every test ends on the brute-force truth of the whole topic: every HBase cell (one version each), every archived
record exactly once, every refused record on the dead-letter topic.
"""

import shutil
import threading
import time

import pytest

from tests import truth
from tests.speed_checks import (
    WORKLOAD,
    assert_archive_exact,
    assert_nothing_lost_nothing_twice,
    produce_warmup,
    speed_cells,
    wait_until_caught_up,
)
from twinlayer.localstack.generator import Workload, produce
from twinlayer.runtime import faults

pytestmark = pytest.mark.integration


def test_three_kills_in_a_row_one_during_recovery_lose_and_double_nothing(settings, spark, speed_layer, fault_figures):
    run = speed_layer().start()
    producer = threading.Thread(
        target=produce,
        args=(settings.kafka_bootstrap, run.topic, Workload(**{**WORKLOAD, "rate": 2000, "count": 60_000, "seed": 11})),
    )
    try:
        produce_warmup(settings, run)
        producer.start()
        run.wait_until(lambda m: run.processed("views") > 5000, 120, "some batches before the first crash")
        run.kill()  # mid-stream: whatever micro-batch is running is cut short
        killed_while_producing = producer.is_alive()

        run.start(wait=False)  # recovering: killed as soon as its metrics answer, before it restarts its queries
        run.wait_until(lambda m: True, 120, "the restarted layer's metrics endpoint")
        run.kill()

        run.start()
        run.wait_until(lambda m: run.processed("views") > 0, 120, "a batch after the second restart")
        run.kill()

        restarted = time.monotonic()
        run.start()
        started = time.monotonic() - restarted
        producer.join(timeout=120)
        assert not producer.is_alive(), "the producer did not finish"
        sent = time.monotonic()
        wait_until_caught_up(settings, run)
        caught_up = time.monotonic() - sent
    finally:
        run.stop()

    assert killed_while_producing
    assert_nothing_lost_nothing_twice(settings, spark, run)
    fault_figures(
        "speed layer SIGKILL x3", queries_running_after_restart_s=started, caught_up_after_last_event_s=caught_up
    )


def test_a_crash_between_the_hbase_write_and_the_commit_replays_into_one_version(
    settings, spark, speed_layer, tmp_path, fault_figures
):
    run = speed_layer()
    fired = tmp_path / "fault-fired"
    run.start(env={faults.FAULT: faults.VIEWS_WRITTEN, faults.FAULT_ONCE: str(fired)}, wait=False)
    try:
        # on-time events first (the watermark then exists before the planted late ones): the first micro-batch
        # that writes cells is cut short after its write
        produce(settings.kafka_bootstrap, run.topic, Workload(rate=2000, count=2000, seed=1))
        assert run.process.wait(timeout=240) == -9, run.log_tail()
        assert fired.exists()
        written, _ = speed_cells(settings, run.table)
        assert written, "the crash came after the micro-batch's HBase write"
        restarted = time.monotonic()
        run.start()  # the views batch the checkpoint never committed runs again, into the same cells
        # the watermark a batch drops late events by is the one before it: let it move past the replayed batch
        run.wait_until(lambda m: run.processed("views") >= 2000, 120, "the replayed batch")
        replayed = time.monotonic() - restarted
        time.sleep(2)
        produce(settings.kafka_bootstrap, run.topic, Workload(**WORKLOAD))
        wait_until_caught_up(settings, run)
    finally:
        run.stop()

    assert_nothing_lost_nothing_twice(settings, spark, run)
    fault_figures("crash after HBase write, before commit", replayed_after_restart_s=replayed)


def test_lost_checkpoint_is_refused_unless_reset_is_asked(settings, spark, speed_layer):
    """Losing the ingest query's checkpoint alone is refused like losing all of them; a reset start killed before its
    first commit starts again where the reset said, not from Kafka's oldest record (which would archive every
    record of the first epoch a second time)."""
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
