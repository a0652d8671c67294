"""Past hours of the stack's own pipeline for tests: an hour no earlier run used, filled through Kafka and the
stack's speed layer into its archive (late for the speed layer's views, which is the batch layer's job)."""

import random
import time

from twinlayer.localstack.generator import Workload, produce
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.storage.archive import read as read_archive


def unused_past_hours(spark, settings, n: int = 1) -> int:
    """The first of ``n`` consecutive hours between one and six days ago that the stack's archive has no record of."""
    archive = read_archive(spark, settings.archive_dir)
    used = set() if archive is None else {r.event_hour for r in archive.select("event_hour").distinct().collect()}
    now_hour = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    candidates = [now_hour - h * HOUR_MS for h in range(24, 144 - n)]
    random.Random().shuffle(candidates)
    return next(h for h in candidates if all(hour_label(h + i * HOUR_MS) not in used for i in range(n)))


def archive_past_events(spark, settings, first_hour: int, count: int, hours: int = 1, seed: int = 31) -> None:
    """Send ``count`` events spread over ``hours`` past hours to the stack's topic and wait until archived."""
    labels = [hour_label(first_hour + i * HOUR_MS) for i in range(hours)]
    already = archived_count(spark, settings, labels)
    ticks = iter(range(count))
    span = hours * HOUR_MS - 60_000
    produce(
        settings.kafka_bootstrap,
        settings.events_topic,
        Workload(rate=0, count=count, duplicate_fraction=0.05, seed=seed),
        clock=lambda: first_hour + 1000 + next(ticks) * span // count,
    )
    count += already
    deadline = time.monotonic() + 120
    while True:  # the stack's speed layer archives them (late for its views, which is the batch layer's job)
        archive = read_archive(spark, settings.archive_dir)
        if archive is not None and archive.where(archive.event_hour.isin(labels)).count() >= count:
            return
        assert time.monotonic() < deadline, "the stack's speed layer did not archive the events"
        time.sleep(3)


def archived_count(spark, settings, labels) -> int:
    archive = read_archive(spark, settings.archive_dir)
    return 0 if archive is None else archive.where(archive.event_hour.isin(labels)).count()
