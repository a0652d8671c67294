"""Run records: what the Spark job of an hour run leaves for the steps after it (version, counts, durations).

The recompute runs in its own process (``spark_jobs/batch_recompute.py`` through ``SparkSubmitOperator``); it
writes ``state/batch/runs/<hour>.json`` and the gate, publish, drift and metric steps read it. The view gate notes
every version of an hour it passed, with the definitions it was computed with, in ``state/batch/gated/<hour>.json``;
publish refuses any other pair. The gates' results and the drift of each hour's last run are kept in
``state/batch/facts/<hour>.json`` for the Lambda page (the Pushgateway holds only the last hour's).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twinlayer.batch.recompute import HourResult
from twinlayer.model.config import Settings
from twinlayer.model.hours import hour_label, hour_start


def run_record_path(settings: Settings, hour_ms: int) -> Path:
    return settings.batch_dir / "runs" / f"{hour_label(hour_ms)}.json"


def write_run_record(settings: Settings, result: HourResult) -> None:
    path = run_record_path(settings, hour_start(result.hour))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_dict()))


def read_run_record(settings: Settings, hour_ms: int) -> dict:
    path = run_record_path(settings, hour_ms)
    if not path.exists():
        raise FileNotFoundError(f"no run record for {hour_label(hour_ms)} at {path}: did the recompute run?")
    return json.loads(path.read_text())


class NotGated(RuntimeError):
    """A version no view gate passed was about to be published."""


def _gated_path(settings: Settings, hour_ms: int) -> Path:
    return settings.batch_dir / "gated" / f"{hour_label(hour_ms)}.json"


def gate_passes(settings: Settings, hour_ms: int) -> list[dict[str, Any]]:
    """Every (version, definitions) of the hour the view gate passed, in the order they passed: entries
    ``{"version", "views"}``; a pass noted before definitions were recorded has ``views`` None."""
    path = _gated_path(settings, hour_ms)
    return _passes(json.loads(path.read_text()) if path.exists() else [])


def _passes(stored: list) -> list[dict[str, Any]]:
    return [p if isinstance(p, dict) else {"version": p, "views": None} for p in stored]


def _update(path: Path, change: Callable[[Any], Any], empty: Any) -> None:
    """Read-change-write one JSON file under a lock (two runs of an hour may get here at once), written whole, then
    renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(change(json.loads(path.read_text()) if path.exists() else empty)))
        os.replace(partial, path)


def record_gate_pass(settings: Settings, hour_ms: int, version: int, views: dict[str, str] | None) -> None:
    """Note that ``version`` of the hour computed with the definitions ``views`` passed the view gate."""
    passed = {"version": version, "views": views}

    def add(stored: list) -> list:
        return [*(p for p in _passes(stored) if p != passed), passed]

    _update(_gated_path(settings, hour_ms), add, [])


def _facts_path(settings: Settings, hour_ms: int) -> Path:
    return settings.batch_dir / "facts" / f"{hour_label(hour_ms)}.json"


def record_hour_fact(settings: Settings, hour_ms: int, name: str, value: Any) -> None:
    """Keep ``value`` as the hour's latest ``name`` (``gate_raw``, ``gate_version``, ``drift``)."""
    _update(_facts_path(settings, hour_ms), lambda facts: {**facts, name: value}, {})


def hour_facts(settings: Settings, hour_ms: int) -> dict[str, Any]:
    path = _facts_path(settings, hour_ms)
    return json.loads(path.read_text()) if path.exists() else {}


def gated_definitions(settings: Settings, hour_ms: int, version: int) -> list[dict[str, str] | None]:
    """The definitions ``version`` of the hour passed the view gate with, the latest last (none: never passed)."""
    return [p["views"] for p in gate_passes(settings, hour_ms) if p["version"] == version]


def gate_passed(settings: Settings, hour_ms: int, version: int, views: dict[str, str] | None) -> bool:
    """Whether ``version`` computed with the definitions ``views`` passed the view gate."""
    return views in gated_definitions(settings, hour_ms, version)
