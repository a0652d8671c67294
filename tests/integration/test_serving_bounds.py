"""The serving HTTP API under hostile requests: each is a 400 in well under a second, and /healthz keeps answering
while they arrive."""

import threading
import time

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

    stop = threading.Event()
    answers: list[int] = []

    def abuse() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                answers.append(session.get(url, params=HOSTILE[0], timeout=10).status_code)

    attackers = [threading.Thread(target=abuse) for _ in range(16)]
    for attacker in attackers:
        attacker.start()
    health = []
    try:
        time.sleep(0.5)
        for _ in range(10):
            started = time.monotonic()
            code = requests.get(f"{settings.url('serving_port')}/healthz", timeout=5).status_code
            health.append((code, time.monotonic() - started))
            time.sleep(0.1)
    finally:
        stop.set()
        for attacker in attackers:
            attacker.join(15)
    assert len(answers) > 100 and set(answers) == {400}
    assert all(code == 200 and seconds < 1.0 for code, seconds in health), health
