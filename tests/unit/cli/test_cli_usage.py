"""The `twinlayer` command's answers to wrong usage and to a service that is not there (pure logic: no stack; the
"service down" cases point the command at a port where nothing listens)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from twinlayer.cli import main
from twinlayer.model.hours import HOUR_MS, hour_label, hours_between
from twinlayer.model.views import by_name, check_key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("view", "key"),
    [("campaign_views_10s", "c1"), ("campaign_activity_1m", "c1|click"), ("campaign_activity_1m", "c1|view")],
)
def test_keys_of_the_right_shape_pass(view, key):
    check_key(by_name()[view], key)


@pytest.mark.parametrize(
    ("view", "key", "why"),
    [
        ("campaign_views_10s", "c1|view", "one value, no '|'"),
        ("campaign_activity_1m", "c1", "2 value"),
        ("campaign_activity_1m", "c1|", "none empty"),
        ("campaign_activity_1m", "c1|hover", "event_type is one of view, click, purchase"),
    ],
)
def test_a_key_of_the_wrong_shape_is_refused_with_the_shape_it_should_have(view, key, why):
    with pytest.raises(ValueError, match="looks like <campaign_id>") as refused:
        check_key(by_name()[view], key)
    assert why in str(refused.value)


def test_wrong_usage_exits_2_with_one_line_and_no_traceback(capsys):
    assert main(["query", "no_such_view", "--key", "x"]) == 2
    assert main(["query", "campaign_activity_1m", "--key", "c1|hover"]) == 2
    assert main(["generate", "--count", "5", "--duration", "1"]) == 2
    assert main(["keys", "campaign_views_10s", "--from", "1m", "--to", "2h"]) == 2
    assert main(["stack", "restart", "no-such-service"]) == 2
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "unknown view 'no_such_view'" in err
    assert "a key of campaign_activity_1m looks like <campaign_id>|<event_type>" in err
    assert "must come before --to" in err
    assert "no service 'no-such-service'" in err


def test_the_installed_command_answers_in_one_line_without_a_traceback(tmp_path):
    """As a person runs it: its own process, its own stderr."""
    env = {**os.environ, "TWINLAYER_THRIFT_PORT": str(free_port())}
    for args, code, expected in (
        (["query", "no_such_view", "--key", "x"], 2, "unknown view 'no_such_view'"),
        (["query", "campaign_views_10s", "--key", "[oops]|[/]"], 2, "got '[oops]|[/]'"),
        (["keys", "campaign_views_10s"], 3, "a service did not answer"),
    ):
        done = subprocess.run(
            [str(Path(sys.executable).parent / "twinlayer"), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == code, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and expected in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_service_that_does_not_answer_exits_3(monkeypatch, capsys):
    monkeypatch.setenv("TWINLAYER_THRIFT_PORT", str(free_port()))
    monkeypatch.setenv("TWINLAYER_KAFKA_PORT", str(free_port()))
    monkeypatch.setenv("TWINLAYER_AIRFLOW_PORT", str(free_port()))
    assert main(["keys", "campaign_views_10s"]) == 3
    assert main(["dlq", "tail"]) == 3
    assert main(["generate", "--count", "5"]) == 3
    assert main(["backfill", "twinlayer_recompute", "--from", "3h", "--to", "2h"]) == 3
    err = capsys.readouterr().err
    assert err.count("a service did not answer") == 4


def test_config_shows_the_effective_settings_and_where_each_came_from(monkeypatch, capsys):
    monkeypatch.setenv("TWINLAYER_KAFKA_PORT", "19092")
    assert main(["config", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kafka_port"] == 19092
    assert shown["thrift_port"] == 9090
    assert main(["config"]) == 0
    table = capsys.readouterr().out
    assert "TWINLAYER_KAFKA_PORT" in table


def test_a_backfill_covers_whole_ended_hours_only():
    first, last = hours_between("2026-11-24T05", "2026-11-24T07:30:00+00:00")
    assert (hour_label(first), hour_label(last)) == ("2026-11-24T05", "2026-11-24T07")
    assert last - first == 2 * HOUR_MS
    with pytest.raises(ValueError, match="has not ended yet"):
        hours_between("3h", "0s")
    now = 1_000 * HOUR_MS + 30 * 60_000
    assert hours_between("3h", "1h", now) == (997 * HOUR_MS, 999 * HOUR_MS)
    with pytest.raises(ValueError, match="is after"):
        hours_between("2026-11-24T07", "2026-11-24T05")
    assert main(["backfill", "twinlayer_speed_watchdog", "--from", "3h", "--to", "2h"]) == 2
