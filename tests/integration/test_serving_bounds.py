"""The serving HTTP API under hostile requests: each is a 400 in well under a second, and /healthz keeps answering
while they arrive."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

pytestmark = pytest.mark.integration

HOSTILE = [
    {"key": "x", "from": "0", "to": "99999999999999999999"},
    {"key": "x", "from": "0"},
    {"key": "x|view", "from": "15m"},
    {"key": "x", "from": "yesterday-ish"},
    {"key": "x", "from": "-5", "to": "10"},
]


def test_hostile_queries_answer_400_fast_and_healthz_stays_up(stack, settings):
    url = f"{settings.url('serving_port')}/views/campaign_views_10s"
    for params in HOSTILE:
        started = time.monotonic()
        response = requests.get(url, params=params, timeout=5)
        assert response.status_code == 400, (params, response.text)
        assert time.monotonic() - started < 1.0, params
        assert response.json()["detail"]

    def abuse(_):
        return requests.get(url, params=HOSTILE[0], timeout=10).status_code

    with ThreadPoolExecutor(16) as pool:
        answers = pool.map(abuse, range(200))
        health = []
        for _ in range(10):
            started = time.monotonic()
            health.append(
                (
                    requests.get(f"{settings.url('serving_port')}/healthz", timeout=5).status_code,
                    time.monotonic() - started,
                )
            )
        assert set(answers) == {400}
    assert all(code == 200 and seconds < 1.0 for code, seconds in health), health
