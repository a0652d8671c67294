"""Is the speed layer alive and making progress? If not, restart it through the stack's supervisor.

``assess`` is pure (the metrics text and the time in, a verdict out); ``check_and_heal`` reads the live metrics,
acts, and pushes what it saw to the Pushgateway.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from twinlayer.model.config import Settings
from twinlayer.runtime.pushgateway import push_gauges
from twinlayer.speed import QUERIES

STALL_SECONDS = 120.0


def assess(metrics_text: str | None, now: float, stall_seconds: float = STALL_SECONDS) -> str | None:
    """None when every query runs and reported progress within ``stall_seconds``, else what is wrong."""
    if metrics_text is None:
        return "the speed layer's metrics endpoint does not answer"
    samples = {
        (s.name, s.labels.get("query")): s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
    }
    problems = []
    for query in QUERIES:
        if samples.get(("twinlayer_speed_query_active", query)) != 1.0:
            problems.append(f"query {query} is not running")
            continue
        last = samples.get(("twinlayer_speed_last_progress_timestamp_seconds", query))
        if last is None or now - last > stall_seconds:
            age = "never" if last is None else f"{now - last:.0f}s ago"
            problems.append(f"query {query} last reported progress {age}")
    return "; ".join(problems) or None


def check_and_heal(settings: Settings, restart: Callable[[], bool]) -> dict:
    """``restart``: restarts the speed layer where it runs (the embedded stack's supervisor, say) and says whether
    it could."""
    import requests

    try:
        text = requests.get(f"{settings.url('speed_metrics_port')}/metrics", timeout=5).text
    except requests.RequestException:
        text = None
    problem = assess(text, time.time())
    restarted = restart() if problem else False
    push_gauges(
        settings,
        "twinlayer_watchdog",
        "twinlayer_speed_watchdog_healthy",
        "1 when the last watchdog check found the speed layer alive and progressing",
        {(): 0.0 if problem else 1.0},
        (),
        {"metric": "healthy"},
    )
    return {"problem": problem, "restarted": restarted}
