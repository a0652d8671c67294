"""`make demo`, first time and every time: the whole demo flow twice in a row on the test session's stack.

Each run must show live speed windows, have Airflow recompute and publish an hour of its own (a second run cannot
reuse the first one's hour: Airflow keeps one run per logical date), and print a merged answer holding batch
windows.
"""

import re

import pytest

from twinlayer.localstack import demo

pytestmark = pytest.mark.integration


def run_demo(stack, capsys) -> str:
    assert demo.run(stack, seconds=12, rate=2000) == 0
    return capsys.readouterr().out


def test_the_demo_runs_twice_in_a_row(stack, capsys):
    outputs = [run_demo(stack, capsys), run_demo(stack, capsys)]
    hours = []
    for out in outputs:
        live = re.findall(r"views/10s of campaign \S+: (.*)", out)
        assert live and any(line != "(none yet)" for line in live), out
        assert re.search(r"^   run success in \d+s: ", out, re.M), out
        hours += re.findall(r"Airflow runs twinlayer_recompute for (\S+):", out)
        batch_windows = re.search(r"\((\d+) windows from the batch layer", out)
        assert batch_windows and int(batch_windows.group(1)) > 0, out
    assert len(hours) == 2 and hours[0] != hours[1], hours
