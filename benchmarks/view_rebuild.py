"""How long the speed layer takes to rebuild its views from Kafka, measured on the running embedded stack's own
speed layer (`make up` first). Prints each figure and appends it as a JSON line to state/bench/speed.jsonl; asserts
nothing.

    python benchmarks/view_rebuild.py [--records 7500000]

``--records`` events are sent to the stack's topic at the generator's top rate and the speed layer catches up with
them live; then `twinlayer speed rebuild` is asked to rebuild its views from the moment the first was sent, and the
rebuild is timed from the request to the views query's commit of the last record (both queries run, as they do in
a rebuild). An hour at 25k events/s is 90M records: the figure for it is this run's rate applied to 90M records,
printed as such, unless ``--records`` is 90M.
"""

from __future__ import annotations

import argparse
import time

from speed_layer import healthy_stack, read_and_lag, record, wait

from twinlayer.localstack.generator import Workload, produce
from twinlayer.model.config import load_settings
from twinlayer.speed import rebuild

SETTINGS = load_settings()
HOUR_AT_25K = 25_000 * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=7_500_000, help="events sent, then rebuilt")
    args = parser.parse_args()
    healthy_stack()
    since_ms = int(time.time() * 1000)
    sent = produce(SETTINGS.kafka_bootstrap, SETTINGS.events_topic, Workload(rate=0, count=args.records, seed=11))
    print(f"sent {sent['sent']:,} events at {sent['events_per_second']:,.0f}/s; the speed layer catches up", flush=True)
    wait(lambda: read_and_lag("views")[1] < 1000 and read_and_lag("ingest")[1] < 1000, 3600, "the live catch-up")
    started = time.monotonic()
    rebuild.request(SETTINGS.checkpoint_dir, since_ms)
    done = rebuild.wait(SETTINGS.checkpoint_dir, 7200, poll=0.2)
    seconds = time.monotonic() - started
    rate = done.records_done / seconds
    record("views_rebuild_seconds", seconds, "s", records=done.records_done)
    record("views_rebuild_records_per_second", rate, "records/s", records=done.records_done)
    record(
        "views_rebuild_hour_at_25k_seconds",
        seconds if done.records_done >= HOUR_AT_25K else HOUR_AT_25K / rate,
        "s",
        measured=done.records_done >= HOUR_AT_25K,
        note="90M records" if done.records_done >= HOUR_AT_25K else "this run's rate over 90M records",
    )


if __name__ == "__main__":
    main()
