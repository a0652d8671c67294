"""The speed layer's dependencies fail while events flow: HBase's Thrift gateway down for a minute, the Kafka broker
restarted. The layer rides both out in the same process (its HBase writes retry for up to three minutes, its Kafka
reads retry), catches up, and ends on the brute-force truth: nothing lost, nothing counted twice.

These stop services of the shared stack, so they run last (``disruptive``).
"""

import threading
import time

import pytest

from tests.speed_checks import WORKLOAD, assert_nothing_lost_nothing_twice, produce_warmup, wait_until_caught_up
from twinlayer.localstack.airflow_api import AirflowClient
from twinlayer.localstack.generator import Workload, produce
from twinlayer.ops.probes import check_hbase

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]

OUTAGE_SECONDS = 60


class Flow(threading.Thread):
    """Events with every planted fault at 1,000/s for ``seconds`` from another thread, through kafka-python (it
    retries a send until its delivery timeout, two minutes). ``error`` holds what stopped it, if anything: the
    truth reads the topic, so the tests also check that every event was delivered."""

    def __init__(self, settings, topic: str, seconds: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.args_ = (
            settings.kafka_bootstrap,
            topic,
            Workload(**{**WORKLOAD, "rate": 1000, "count": 1000 * seconds, "seed": seed}),
        )
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            produce(*self.args_, client="kafka-python")
        except BaseException as exc:  # noqa: BLE001 — reported by the test
            self.error = exc

    def delivered_everything(self) -> bool:
        return not self.is_alive() and self.error is None


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except Exception as exc:  # noqa: BLE001 — not back yet
            assert time.monotonic() < deadline, f"{what} not back after {timeout}s: {exc}"
            time.sleep(1)


def test_hbase_thrift_down_for_a_minute_while_events_flow(stack, settings, spark, speed_layer, fault_figures):
    run = speed_layer().start()
    try:
        produce_warmup(settings, run)
        producer = Flow(settings, run.topic, OUTAGE_SECONDS + 30, seed=23)
        time.sleep(10)
        airflow = AirflowClient.for_stack(settings)
        stack.stop("hbase-thrift")
        try:
            time.sleep(OUTAGE_SECONDS)
            assert run.process.poll() is None, run.log_tail()
            lambda_page = airflow.session.get(f"{airflow.base}/twinlayer/api/overview", timeout=60)
            assert lambda_page.status_code == 503 and "HBase does not answer" in lambda_page.json()["detail"]
        finally:
            stack.start("hbase-thrift")
        wait_for(lambda: check_hbase(settings), 120, "the Thrift gateway")
        producer.join(timeout=120)
        sent = time.monotonic()
        wait_until_caught_up(settings, run)
        caught_up = time.monotonic() - sent
        pid_kept = run.process.poll() is None
    finally:
        run.stop()

    assert pid_kept, "the speed layer exited instead of waiting for HBase"
    assert producer.delivered_everything(), producer.error
    assert_nothing_lost_nothing_twice(settings, spark, run)
    fault_figures("HBase Thrift down 60 s", outage_s=OUTAGE_SECONDS, caught_up_after_last_event_s=caught_up)


def test_kafka_broker_restart_while_events_flow(stack, settings, spark, speed_layer, fault_figures):
    from twinlayer.storage.kafka import end_offsets

    run = speed_layer().start()
    try:
        produce_warmup(settings, run)
        producer = Flow(settings, run.topic, 60, seed=29)
        time.sleep(10)
        stopped = time.monotonic()
        stack.restart("kafka")
        wait_for(lambda: end_offsets(settings.kafka_bootstrap, run.topic), 120, "the Kafka broker")
        back = time.monotonic()
        producer.join(timeout=180)
        sent = time.monotonic()
        wait_until_caught_up(settings, run)
        caught_up = time.monotonic() - sent
        pid_kept = run.process.poll() is None
    finally:
        run.stop()

    assert pid_kept, "the speed layer exited instead of waiting for Kafka"
    assert producer.delivered_everything(), producer.error
    assert_nothing_lost_nothing_twice(settings, spark, run)
    fault_figures("Kafka broker restart", broker_away_s=back - stopped, caught_up_after_last_event_s=caught_up)
