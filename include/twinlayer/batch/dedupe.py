"""Which record of an event id counts: one rule, so the batch job and its gates agree on every hour.

A producer may send one event id more than once: a retry (same content) or a bug (other content — *conflicting
duplicates*). The batch layer keeps the record Kafka received first: earliest Kafka timestamp, then lowest
partition, then lowest offset. Any two runs over the same archive keep the same records, and the quality gates count
events over exactly the records the views are computed from, so a conflict cannot make the totals disagree. The ids
whose records differ in content are counted (``CONFLICTING``) for a metric and an alert.

The speed layer keeps the first record it reads within its watermark (``dropDuplicatesWithinWatermark``): the same
record whenever the copies reach it in different micro-batches in Kafka's order; when two conflicting copies arrive
in one micro-batch, or on two partitions out of timestamp order, it may keep the other one. The published batch
version replaces the speed value, and the drift metric shows the difference meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twinlayer.model import events as ev

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FIRST_RECEIVED = ("kafka_timestamp", "kafka_partition", "kafka_offset")
CONTENT = tuple(name for name in ev.EVENT_COLUMNS if name != "event_id")
CONFLICTING = "conflicting_duplicate"
_RANK = "_received_rank"


def first_received(raw: DataFrame) -> DataFrame:
    """One record per ``event_id`` — the one Kafka received first — with ``CONFLICTING`` true when the id's records
    do not all carry the same content. Records without an id pass through one by one (the raw gate refuses them).

    Repeated ids are few: they are found from the id column alone (one aggregation), and only their records are
    ranked; every other record passes through a broadcast anti-join, so the rest of its columns never cross a
    shuffle (ranking every record moved all of them, sorted, for the sake of a few copies). The repeated ids are
    broadcast whatever their number: an hour whose ids nearly all repeat sends all of them to every task."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    repeated = F.broadcast(raw.groupBy("event_id").count().where(F.col("count") > 1).select("event_id"))
    once = raw.join(repeated, "event_id", "left_anti").withColumn(CONFLICTING, F.lit(False))
    same_id = Window.partitionBy("event_id")
    content = F.struct(*CONTENT)
    first = (
        raw.join(repeated, "event_id", "left_semi")
        .withColumn(_RANK, F.row_number().over(same_id.orderBy(*FIRST_RECEIVED)))
        .withColumn(CONFLICTING, F.min(content).over(same_id) != F.max(content).over(same_id))
        .where(F.col(_RANK) == 1)
        .drop(_RANK)
    )
    return once.unionByName(first)
