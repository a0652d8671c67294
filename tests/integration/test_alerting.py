"""Alerting end to end on the live stack: a stopped speed layer makes Prometheus fire SpeedLayerDown, Alertmanager
routes it to the on-call receiver (the alert log on loopback), and starting the speed layer again resolves it."""

import time

import pytest
import requests

from twinlayer.ops.probes import check_speed_layer

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]

FOR_SECONDS = 60  # SpeedLayerDown's for:
SCRAPE_AND_EVAL = 5 + 5  # scrape and evaluation intervals of the stack's Prometheus
GROUP_WAIT, GROUP_INTERVAL = 5, 30  # the critical route of alertmanager.yml


def wait_for(probe, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f}s"
        time.sleep(1)


def active_alerts(settings, name):
    alerts = requests.get(
        f"{settings.url('alertmanager_port')}/api/v2/alerts",
        timeout=5,
        params={"filter": f'alertname="{name}"', "active": "true"},
    ).json()
    return [a for a in alerts if a["status"]["state"] == "active"]


def notifications(settings, receiver, name, status, since):
    sent = requests.get(
        f"{settings.url('alert_log_port')}/notifications", params={"receiver": receiver}, timeout=5
    ).json()
    return [
        n
        for n in sent
        if n["received"] >= since
        and n["status"] == status
        and any(a["labels"].get("alertname") == name for a in n["alerts"])
    ]


def test_stopped_speed_layer_fires_an_alert_that_reaches_on_call_and_resolves_when_it_is_back(stack, settings):
    assert not active_alerts(settings, "SpeedLayerDown")
    stopped = time.time()
    stack.stop("speed-layer")
    try:
        firing = wait_for(
            lambda: notifications(settings, "oncall", "SpeedLayerDown", "firing", stopped),
            FOR_SECONDS + SCRAPE_AND_EVAL + GROUP_WAIT + 30,
            "SpeedLayerDown notified to on-call",
        )
        fired_after = firing[0]["received"] - stopped
        alert = next(a for a in firing[0]["alerts"] if a["labels"]["alertname"] == "SpeedLayerDown")
        assert alert["labels"]["severity"] == "critical" and alert["labels"]["job"] == "speed-layer"
        assert active_alerts(settings, "SpeedLayerDown")
        assert not notifications(settings, "team", "SpeedLayerDown", "firing", stopped)
    finally:
        stack.start("speed-layer")
    started = time.time()
    wait_for(lambda: _answers(settings), 240, "the speed layer answering again")
    answered_after = time.time() - started
    resolved = wait_for(
        lambda: notifications(settings, "oncall", "SpeedLayerDown", "resolved", started),
        SCRAPE_AND_EVAL + GROUP_INTERVAL + answered_after + 30,
        "SpeedLayerDown resolved",
    )
    assert not active_alerts(settings, "SpeedLayerDown")
    print(
        f"fired {fired_after:.0f}s after the stop (for: {FOR_SECONDS}s); speed layer answered "
        f"{answered_after:.0f}s after its start; resolved notice {resolved[0]['received'] - started:.0f}s after it"
    )


def _answers(settings) -> bool:
    try:
        check_speed_layer(settings)
        return True
    except Exception:  # noqa: BLE001 — still starting
        return False
