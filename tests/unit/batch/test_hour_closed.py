"""When an hour may be recomputed: pure logic over the archive's position in Kafka, per partition, no services."""

from twinlayer.batch.late import CLOSE_GRACE_MS, ArchivePosition, hour_is_closed
from twinlayer.model.config import load_settings

END = 1_790_006_400_000
CLOSES = END + CLOSE_GRACE_MS
BEFORE = END - 30_000


def closed(position: ArchivePosition, now_ms: int = CLOSES + 60_000) -> bool:
    return hour_is_closed(load_settings(), END, now_ms=now_ms, position=position)


def test_an_archive_behind_kafka_keeps_the_hour_open_whatever_the_clock():
    behind = ArchivePosition({0: 10, 1: 5}, {0: BEFORE, 1: BEFORE}, kafka_end={0: 900, 1: 800})
    assert not closed(behind)
    assert not closed(behind, now_ms=END + 24 * 3_600_000)


def test_every_partition_must_be_past_the_grace_or_read_to_its_end():
    assert closed(ArchivePosition({0: 10, 1: 5}, {0: CLOSES, 1: CLOSES + 9}, kafka_end={0: 900, 1: 800}))
    # one partition's newer record says nothing of another partition's backlog
    assert not closed(ArchivePosition({0: 10, 1: 5}, {0: CLOSES, 1: BEFORE}, kafka_end={0: 900, 1: 800}))
    assert closed(ArchivePosition({0: 10, 1: 800}, {0: CLOSES, 1: BEFORE}, kafka_end={0: 900, 1: 800}))
    assert not closed(ArchivePosition({0: 10}, {0: CLOSES - 1}, kafka_end={0: 900}))


def test_a_quiet_topic_read_to_its_end_closes_the_hour():
    assert closed(ArchivePosition({0: 900, 1: 800}, {0: BEFORE, 1: BEFORE}, kafka_end={0: 900, 1: 800, 2: 0}))
    assert not closed(ArchivePosition({0: 900}, {0: BEFORE}, kafka_end={0: 900, 1: 800}))


def test_kafka_unreachable_keeps_the_hour_open():
    assert not closed(ArchivePosition({0: 900}, {0: CLOSES + 5}, kafka_end=None))


def test_an_archive_written_before_positions_were_recorded_leaves_the_clock_to_decide():
    legacy = ArchivePosition({}, {}, kafka_end={0: 900}, recorded=False)
    assert closed(legacy) and not closed(legacy, now_ms=CLOSES - 1)


def test_nothing_closes_before_the_grace_has_passed():
    caught_up = ArchivePosition({0: 900}, {0: CLOSES + 5}, kafka_end={0: 900})
    assert not closed(caught_up, now_ms=CLOSES - 1)
