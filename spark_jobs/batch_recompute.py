"""Batch layer entry point: recompute the views of whole UTC hours from the archive as new HBase versions.

    spark-submit spark_jobs/batch_recompute.py --start 2026-11-24T05:00:00+00:00 --end 2026-11-24T06:00:00+00:00

Thin on purpose: `twinlayer.batch.recompute.recompute_hour` per hour, then a run record per hour for the steps that
follow (quality gate, publish). Nothing is published here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from twinlayer.batch.recompute import recompute_hour
from twinlayer.batch.runs import write_run_record
from twinlayer.model.config import load_settings
from twinlayer.model.hours import hours_in, parse_time
from twinlayer.runtime.spark import build_session


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", required=True, help="epoch ms or ISO-8601, a whole hour")
    parser.add_argument("--end", required=True, help="epoch ms or ISO-8601, a whole hour, exclusive")
    args = parser.parse_args(argv)
    settings = load_settings()
    hours = hours_in(parse_time(args.start, 0), parse_time(args.end, 0))
    spark = build_session("twinlayer-batch-recompute", settings)
    spark.sparkContext.setLogLevel("WARN")
    try:
        for hour in hours:
            result = recompute_hour(spark, settings, hour)
            write_run_record(settings, result)
            print(json.dumps(result.as_dict()), flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
