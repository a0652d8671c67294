"""The supervisor keeps the stack alive, `up` is idempotent, and `down` leaves nothing behind."""

import os
import signal
import time

import psutil
import pytest
import requests

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]


def stack_processes(settings):
    """Live processes, other than this test session's own, whose command line points into the stack's state folder."""
    marker = str(settings.state_dir)
    ours = {os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))}  # e.g. the test Spark JVM
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if (
                proc.pid not in ours
                and proc.info["status"] != psutil.STATUS_ZOMBIE
                and any(marker in arg for arg in proc.info["cmdline"] or [])
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def pids(stack):
    return {name: info["pid"] for name, info in stack.process_info().items()}


def test_up_twice_is_harmless(stack):
    before = pids(stack)
    stack.up()
    assert pids(stack) == before
    assert stack.healthy()


def test_the_speed_layer_and_airflow_yield_the_cores_to_serving(stack):
    """Background work runs niced (its JVM and tasks inherit it); what answers queries does not."""
    nice = {name: psutil.Process(pid).nice() for name, pid in pids(stack).items() if pid}
    background = {"speed-layer", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
    assert {name for name, value in nice.items() if value > 0} == background, nice
    speed_jvm = [p for p in psutil.Process(pids(stack)["speed-layer"]).children(recursive=True) if p.name() == "java"]
    assert speed_jvm and all(p.nice() > 0 for p in speed_jvm)


def test_killed_jvm_service_is_restarted_by_the_supervisor(stack, settings):
    victim = pids(stack)["hbase-thrift"]
    os.kill(victim, signal.SIGKILL)
    serving = settings.url("serving_port")
    outage = requests.get(f"{serving}/views/campaign_views_10s", params={"key": "c1", "from": "5m"}, timeout=10)
    assert outage.status_code == 503, outage.text  # the runbook's answer for HBase down, not a 500
    assert requests.get(f"{serving}/healthz", timeout=10).status_code == 503
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = stack.process_info()["hbase-thrift"]
        if info["statename"] == "RUNNING" and info["pid"] != victim:
            try:
                from twinlayer.ops.probes import check_hbase

                check_hbase(stack.settings)
                break
            except Exception:  # noqa: BLE001 — still starting
                pass
        time.sleep(1)
    else:
        pytest.fail("hbase-thrift was not restarted and answering within 120 s")
    assert pids(stack)["hbase-thrift"] != victim


def test_down_leaves_no_process_and_up_brings_everything_back(stack, settings):
    stack.down()
    try:
        assert not stack.supervisor_running()
        leftovers = stack_processes(settings)
        assert leftovers == [], [p.info["cmdline"][:3] for p in leftovers]
    finally:
        stack.up()
    assert stack.healthy()


def test_watchdog_restarts_a_stalled_speed_layer(stack, settings):
    from twinlayer.ops.probes import check_speed_layer
    from twinlayer.ops.watchdog import check_and_heal

    stalled = pids(stack)["speed-layer"]
    os.kill(stalled, signal.SIGSTOP)  # alive to the supervisor, silent to everyone else
    try:
        verdict = check_and_heal(settings, restart=lambda: stack.restart_supervised("speed-layer"))
    finally:
        try:
            os.kill(stalled, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert verdict["problem"] and verdict["restarted"]
    assert pids(stack)["speed-layer"] != stalled
    deadline = time.monotonic() + 180
    while True:
        try:
            check_speed_layer(settings)
            break
        except Exception:  # noqa: BLE001 — still starting
            assert time.monotonic() < deadline, "the restarted speed layer did not come back"
            time.sleep(2)
    assert check_and_heal(settings, restart=lambda: stack.restart_supervised("speed-layer")) == {
        "problem": None,
        "restarted": False,
    }
