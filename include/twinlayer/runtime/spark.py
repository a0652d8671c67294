"""One way to build a SparkSession for twinlayer's jobs and tests, with the Kafka connector on the classpath.

The connector jars are fetched from Maven Central by `make jars` and passed as local paths: nothing is downloaded
when a job starts. On a cluster, `spark-submit --jars` or the cluster's own classpath does the same job and the
builder leaves an existing configuration alone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from twinlayer.model.config import Settings


def spark_home() -> str:
    """The pyspark wheel is a complete Spark distribution; spark-submit needs to be told where it is."""
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("pyspark is not installed: run `make install`")
    return str(Path(spec.origin).parent)


def connector_jars(settings: Settings) -> list[str]:
    jars = sorted(str(p) for p in (settings.jars_dir / "spark").glob("*.jar"))
    if not jars:
        raise FileNotFoundError(f"no Spark Kafka connector jars in {settings.jars_dir / 'spark'}: run `make jars`")
    return jars


def local_conf(settings: Settings, shuffle_partitions: int = 2) -> dict[str, str]:
    """Settings for a local[2] session bound to loopback; the shuffle width is frozen into streaming checkpoints."""
    return {
        "spark.master": "local[2]",
        "spark.jars": ",".join(connector_jars(settings)),
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": "2",
        "spark.driver.host": settings.host,
        "spark.driver.bindAddress": settings.host,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
        "spark.driver.memory": "2g",
        "spark.sql.warehouse.dir": str(Path(settings.state_dir) / "spark-warehouse"),
    }


def submitted() -> bool:
    """True when spark-submit launched this driver (it then owns master, jars and resources)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_session(app_name: str, settings: Settings, extra: dict[str, str] | None = None):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if not submitted():
        os.environ.setdefault("SPARK_LOCAL_IP", settings.host)
    conf = {} if submitted() else local_conf(settings)
    for key, value in {**conf, **(extra or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@contextlib.contextmanager
def session_scope(app_name: str, settings: Settings):
    """The process's running SparkSession if there is one (left running), else a new one stopped at the end."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    session = build_session(app_name, settings)
    try:
        yield session
    finally:
        session.stop()
