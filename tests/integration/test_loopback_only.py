"""Nothing of the embedded stack is reachable from another machine: every socket any of its processes (and their
children: Airflow's workers, the speed layer's Spark driver) listens on is on loopback."""

import psutil
import pytest

from tests.sockets import exposed, listening

pytestmark = pytest.mark.integration


def test_every_service_of_the_stack_listens_on_loopback_only(stack, settings):
    processes = [psutil.Process(info["pid"]) for info in stack.process_info().values() if info.get("pid")]
    found = listening(processes)
    ports = {port for _, port, _ in found}
    expected = {
        settings.kafka_port,
        settings.thrift_port,
        settings.prometheus_port,
        settings.alertmanager_port,
        settings.pushgateway_port,
        settings.airflow_port,
        settings.postgres_port,
        settings.serving_port,
        settings.speed_metrics_port,
    }
    assert expected <= ports, f"not seen listening: {expected - ports}"
    assert exposed(found) == set()
