"""The batch job and the batch steps as the recompute DAG runs them, from a test: spark-submit with the DAG's
options, and the stack's Python for the steps, with the test's own tables and state."""

import os
import subprocess
import sys

from twinlayer.model.config import PROJECT_ROOT
from twinlayer.runtime.spark import spark_home


def env_for(settings):
    return {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT / "include"),
        "SPARK_HOME": spark_home(),
        "TWINLAYER_STATE_DIR": str(settings.state_dir),
        "TWINLAYER_SPEED_TABLE": settings.speed_table,
        "TWINLAYER_BATCH_TABLE": settings.batch_table,
    }


def spark_submit_recompute(settings, start_ms, end_ms, env: dict[str, str] | None = None, check: bool = True):
    """The batch job exactly as the DAG submits it."""
    result = subprocess.run(
        [
            str(PROJECT_ROOT / ".venv" / "bin" / "spark-submit"),
            "--master",
            "local[2]",
            "--conf",
            "spark.sql.shuffle.partitions=4",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            f"spark.pyspark.python={sys.executable}",
            str(PROJECT_ROOT / "spark_jobs" / "batch_recompute.py"),
            "--start",
            str(start_ms),
            "--end",
            str(end_ms),
        ],
        env={**env_for(settings), **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, result.stderr[-4000:]
    return result
