"""Parsing Kafka records into events: pure DataFrame → DataFrame transformations of the speed layer.

``parse_events`` turns raw Kafka records into typed events, each either valid or carrying the first reason it was
refused; ``valid_events`` and ``dead_letters`` split that result. No reader, writer or sink lives here.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from twinlayer.model import events as ev

EVENT_COLUMNS = list(ev.EVENT_COLUMNS)
SOURCE_COLUMNS = list(ev.SOURCE_COLUMNS)


def campaign_mapping(spark: SparkSession) -> DataFrame:
    rows = sorted(ev.ad_campaigns().items())
    return spark.createDataFrame(rows, "ad_id string, campaign_id string")


def _first_failure(checks: list[tuple[Column, Column | str]]) -> Column:
    """The reason of the first check whose condition holds, else null."""
    expr: Column | None = None
    for condition, reason in reversed(checks):
        reason_col = reason if isinstance(reason, Column) else F.lit(reason)
        expr = F.when(condition, reason_col) if expr is None else F.when(condition, reason_col).otherwise(expr)
    assert expr is not None, "no checks"
    return expr


def _diagnosis(payload: Column, small: Column) -> Column:
    """Why a record that did not parse cleanly is refused: size, JSON, object, a missing field or a wrong type.

    Evaluated only for records that failed the fast path, so the slower VARIANT parse it uses costs nothing for
    valid traffic. The typed values come from ``from_json`` alone, which is what decides "wrong type".
    """
    v = F.try_parse_json(payload)
    missing = []
    for name in ev.FIELDS:
        value = F.try_variant_get(v, f"$.{name}", "variant")
        missing.append((value.isNull() | F.is_variant_null(value), f"{ev.REASON_MISSING}:{name}"))
    return _first_failure(
        [
            (~small, ev.REASON_TOO_LARGE),
            (v.isNull(), ev.REASON_MALFORMED),
            (~F.schema_of_variant(v).startswith("OBJECT"), ev.REASON_NOT_OBJECT),
            *missing,
            *[(F.col(name).isNull(), f"{ev.REASON_WRONG_TYPE}:{name}") for name in ev.FIELDS],
        ]
    )


def parse_events(raw: DataFrame, mapping: DataFrame) -> DataFrame:
    """Kafka records (value, partition, offset, timestamp) → typed events plus ``error`` (null when valid).

    Checks run in a fixed order and the first failure is the reason: size, JSON, object, each field present, each
    field's type (strict: ``event_time`` must be a JSON integer; string fields take any JSON value), enumerations,
    known ad, timestamp within bounds of the Kafka record time. The original payload is kept as ``payload`` for the
    dead-letter topic.
    """
    schema = ", ".join(f"{name} {sql_type}" for name, sql_type in ev.FIELDS.items())
    source = raw.select(
        F.col("value").cast("string").alias("payload"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
    )
    small = F.octet_length("payload") <= ev.MAX_PAYLOAD_BYTES
    parsed = source.select("*", F.when(small, F.from_json("payload", schema)).alias("_e")).select(
        "payload", *SOURCE_COLUMNS, *(F.col(f"_e.{name}").alias(name) for name in ev.FIELDS)
    )
    joined = parsed.join(F.broadcast(mapping), on="ad_id", how="left")
    complete = F.lit(True)
    for name in ev.FIELDS:
        complete = complete & F.col(name).isNotNull()
    kafka_ms = F.unix_millis("kafka_timestamp")
    business = _first_failure(
        [
            *[(~F.col(name).isin(*allowed), f"{ev.REASON_BAD_VALUE}:{name}") for name, allowed in ev.ENUMS.items()],
            (F.col("campaign_id").isNull(), ev.REASON_UNKNOWN_AD),
            (F.col("event_time") < kafka_ms - ev.MAX_AGE_MS, ev.REASON_TOO_OLD),
            (F.col("event_time") > kafka_ms + ev.MAX_FUTURE_MS, ev.REASON_IN_FUTURE),
        ]
    )
    return joined.select(
        *(name for name in ev.FIELDS if name != "event_time"),
        F.timestamp_millis("event_time").alias("event_time"),
        F.col("event_time").alias("event_time_ms"),
        "campaign_id",
        *SOURCE_COLUMNS,
        "payload",
        F.when(complete, business).otherwise(_diagnosis(F.col("payload"), small)).alias("error"),
    )


def valid_events(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("error").isNull()).select(*EVENT_COLUMNS, *SOURCE_COLUMNS)


def dead_letters(parsed: DataFrame) -> DataFrame:
    """Refused records with their reason, original payload and Kafka coordinates (the idempotency key)."""
    return parsed.where(F.col("error").isNotNull()).select("error", "payload", *SOURCE_COLUMNS)
