"""Speed layer entry point: `python spark_jobs/speed_layer.py` on the embedded stack, or `spark-submit` it.

Thin on purpose: options in, `twinlayer.speed.layer.start_speed_layer`, metrics served, then wait (and tick). Under
spark-submit the session keeps the master and jars the submitter gave it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

from twinlayer.model.config import load_settings
from twinlayer.runtime.spark import build_session
from twinlayer.speed import NEEDS_OPERATOR
from twinlayer.speed.checkpoints import CheckpointMissing, incompatible_state
from twinlayer.speed.layer import start_speed_layer
from twinlayer.speed.metrics import ProgressListener, SpeedMetrics, serve
from twinlayer.speed.stream import QUERIES, SESSION_CONF, SpeedOptions
from twinlayer.storage import hbase as hbase_store
from twinlayer.storage.kafka import ensure_topics

log = logging.getLogger("twinlayer.speed_layer")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic")
    parser.add_argument("--dlq-topic")
    parser.add_argument("--table")
    parser.add_argument("--archive-dir")
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--metrics-port", type=int)
    parser.add_argument("--watermark")
    parser.add_argument("--views-trigger")
    parser.add_argument("--table-max-versions", type=int)
    parser.add_argument("--max-offsets-per-trigger", type=int)
    parser.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="start the queries cold (their first micro-batch then takes about ten seconds)",
    )
    parser.add_argument(
        "--reset-checkpoints",
        action="store_true",
        help="start without checkpoints over an existing archive (opens a new archive epoch)",
    )
    return parser.parse_args(argv)


def wait_for(action, what: str, timeout: float = 180.0) -> None:
    """Run ``action`` until it succeeds: under the supervisor the speed layer may start before Kafka or HBase."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except Exception as exc:  # any failure means "not there yet" until the deadline
            if time.monotonic() > deadline:
                raise SystemExit(f"speed layer: {what} did not answer within {timeout:.0f}s: {exc}") from exc
            log.info("waiting for %s: %s", what, exc)
            time.sleep(3)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    settings = load_settings()
    overrides = {
        k: v
        for k, v in {
            "topic": args.topic,
            "dlq_topic": args.dlq_topic,
            "table": args.table,
            "archive_dir": args.archive_dir and Path(args.archive_dir).resolve(),
            "checkpoint_dir": args.checkpoint_dir and Path(args.checkpoint_dir).resolve(),
            "watermark": args.watermark,
            "views_trigger": args.views_trigger,
            "table_max_versions": args.table_max_versions,
            "max_offsets_per_trigger": args.max_offsets_per_trigger,
        }.items()
        if v is not None
    }
    options = SpeedOptions.from_settings(
        settings, reset_checkpoints=args.reset_checkpoints, warm_up=args.warm_up, **overrides
    )

    wait_for(
        lambda: ensure_topics(
            settings.kafka_bootstrap, {options.topic: settings.events_partitions, options.dlq_topic: 1}
        ),
        "Kafka",
    )
    wait_for(lambda: hbase_store.ping(hbase_store.pool_for(settings, size=1)), "HBase Thrift")
    spark = build_session("twinlayer-speed-layer", settings, SESSION_CONF)
    spark.sparkContext.setLogLevel("WARN")
    metrics = SpeedMetrics()
    spark.streams.addListener(ProgressListener(metrics))
    serve(metrics, settings.host, args.metrics_port or settings.speed_metrics_port)
    try:
        layer = start_speed_layer(spark, settings, options, metrics)
    except CheckpointMissing as exc:
        log.error("%s", exc)
        return NEEDS_OPERATOR
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    log.info("speed layer running: queries %s, archive %s", ", ".join(QUERIES), options.archive_dir)
    try:
        while not stopping:
            layer.tick()
            for query in layer.queries:
                if not query.isActive:
                    error = query.exception()
                    advice = query.name == "views" and incompatible_state(error, layer.views_checkpoint)
                    if advice:
                        log.error("%s", advice)
                        return NEEDS_OPERATOR
                    log.error("query %s stopped: %s", query.name, error)
                    return 1
            time.sleep(1)
    finally:
        layer.stop()
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
