"""The real speed layer end to end: generated events with planted faults through Kafka, Spark and HBase.

Every HBase cell must equal the brute-force truth of tests/truth.py; the archive must hold every valid record
exactly once; every refused record must be in the dead-letter topic with its reason. Crashes and lost checkpoints
are in tests/faults.
"""

import pytest

from tests import truth
from tests.speed_checks import (
    LATE_BY_MS,
    WORKLOAD,
    assert_archive_exact,
    assert_cells_match,
    assert_dead_letters,
    expected_speed_cells,
    produce_warmup,
    speed_cells,
    wait_until_drained,
)
from twinlayer.localstack.generator import Workload, produce

pytestmark = pytest.mark.integration


def test_speed_layer_matches_brute_force_truth(settings, spark, speed_layer):
    run = speed_layer().start()
    try:
        produce_warmup(settings, run)
        produce(settings.kafka_bootstrap, run.topic, Workload(**WORKLOAD))
        records = truth.read_topic(settings.kafka_bootstrap, run.topic)
        wait_until_drained(run, len(records))
        metrics = run.metrics()
    finally:
        run.stop()

    classified, expected = expected_speed_cells(records)
    stored, _ = speed_cells(settings, run.table)
    assert_cells_match(stored, expected)
    assert_archive_exact(spark, run, classified)
    assert_dead_letters(settings, run, classified)
    late = sum(1 for r, e in classified.valid if e["event_time"] < r.timestamp_ms - LATE_BY_MS / 2)
    assert late > 0 and metrics[("twinlayer_speed_late_events_dropped_total", (("query", "views"),))] >= late
    dlq_total = sum(v for (name, _), v in metrics.items() if name == "twinlayer_speed_dead_letters_total")
    assert dlq_total == len(classified.refused)
