"""Run records: what the Spark job of an hour run leaves for the steps after it (version, counts, durations).

The recompute runs in its own process (``spark_jobs/batch_recompute.py`` through ``SparkSubmitOperator``); it
writes ``state/batch/runs/<hour>.json`` and the gate, publish, drift and metric steps read it.
"""

from __future__ import annotations

import json
from pathlib import Path

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
