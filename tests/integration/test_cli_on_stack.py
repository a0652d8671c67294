"""The `twinlayer` command against the real stack: events sent by `generate`, their refused records shown by
`dlq tail` exactly as the brute-force parser refuses them, and the keys and windows the views then hold."""

import json
import time
from collections import Counter

import pytest

from tests import truth
from twinlayer.cli import main
from twinlayer.localstack.generator import EventFactory, Workload
from twinlayer.model import events as ev
from twinlayer.model.views import by_name, check_key

pytestmark = pytest.mark.integration


def run_json(capsys, *args: str):
    capsys.readouterr()
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_generate_then_dlq_tail_keys_and_query(stack, settings, capsys):
    seed = time.time_ns() % 1_000_000_007
    workload = Workload(rate=0, count=4000, malformed_fraction=0.05, seed=seed)
    factory = EventFactory(workload)
    planted = [factory.next_payload() for _ in range(workload.count or 0)]
    now = int(time.time() * 1000)
    ads = ev.ad_campaigns()
    expected = Counter(
        reason
        for payload in planted
        if factory.run_id.encode() in payload
        and (reason := truth.refusal(truth.Record(0, 0, now, payload), ads)) is not None
    )
    assert expected

    sent = run_json(capsys, "generate", "--rate", "0", "--count", "4000", "--malformed", "0.05", "--seed", str(seed))
    assert sent["sent"] == 4000

    deadline = time.monotonic() + 90
    while True:
        letters = run_json(capsys, "dlq", "tail", "-n", "2000")
        ours = Counter(letter["reason"] for letter in letters if factory.run_id in str(letter.get("payload")))
        if ours == expected or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert ours == expected
    assert all(letter["key"].startswith(f"{settings.events_topic}:") for letter in letters)

    views = by_name()
    since = str(int(time.time() * 1000) - 5 * 60_000)  # one instant for both commands
    for name in views:
        held = run_json(capsys, "keys", name, "--from", since)
        assert held, f"{name} holds no key"
        for row in held:
            check_key(views[name], row["key"])
        busiest = max(held, key=lambda row: row["speed_windows"])
        assert busiest["speed_windows"] > 0
        answer = run_json(capsys, "query", name, "--key", busiest["key"], "--from", since)
        assert answer["key"] == busiest["key"]
        assert len(answer["windows"]) >= busiest["speed_windows"]
        assert {w["source"] for w in answer["windows"]} <= {"speed", "batch"}
