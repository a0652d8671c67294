"""The event model: JSON ad events of the Yahoo Streaming Benchmark shape and their static ad → campaign mapping.

This module is pure Python (no Spark) so producers, the generator and the tests share it. The one schema lives in
``FIELDS``; the Spark parser in ``twinlayer.speed.parse`` validates against it, and the validation rules a record
can fail are the ``REASON_*`` names that reach the dead-letter topic.
"""

from __future__ import annotations

import uuid

EVENT_TYPES = ("view", "click", "purchase")
AD_TYPES = ("banner", "modal", "sponsored-search", "mail", "mobile")
CAMPAIGNS = 100
ADS_PER_CAMPAIGN = 10

# name -> Spark SQL type of the field in the JSON payload; every field is required.
FIELDS: dict[str, str] = {
    "event_id": "string",
    "user_id": "string",
    "page_id": "string",
    "ad_id": "string",
    "ad_type": "string",
    "event_type": "string",
    "event_time": "bigint",  # epoch milliseconds
    "ip_address": "string",
}
# A valid event as the layers hold it (name -> Spark SQL type): the payload's fields, the event time both as a
# timestamp and as epoch ms, the campaign its ad belongs to; then where Kafka kept the record.
EVENT_COLUMNS: dict[str, str] = {
    **{name: sql_type for name, sql_type in FIELDS.items() if name != "event_time"},
    "event_time": "timestamp",
    "event_time_ms": "bigint",
    "campaign_id": "string",
}
SOURCE_COLUMNS: dict[str, str] = {"kafka_partition": "int", "kafka_offset": "bigint", "kafka_timestamp": "timestamp"}
ENUMS: dict[str, tuple[str, ...]] = {"event_type": EVENT_TYPES, "ad_type": AD_TYPES}

MAX_PAYLOAD_BYTES = 16 * 1024
MAX_AGE_MS = 7 * 24 * 3600 * 1000  # older than this (against the Kafka record time) is refused, not archived
MAX_FUTURE_MS = 5 * 60 * 1000  # further ahead of the Kafka record time than this is refused

REASON_TOO_LARGE = "payload_too_large"
REASON_MALFORMED = "malformed_json"
REASON_NOT_OBJECT = "not_an_object"
REASON_MISSING = "missing_field"  # reported as missing_field:<name>
REASON_WRONG_TYPE = "wrong_type"  # reported as wrong_type:<name>
REASON_BAD_VALUE = "bad_value"  # reported as bad_value:<name>
REASON_UNKNOWN_AD = "unknown_ad"
REASON_TOO_OLD = "timestamp_too_old"
REASON_IN_FUTURE = "timestamp_in_future"

_NAMESPACE = uuid.UUID("6f1c1f4e-8a0e-4f57-9d55-0b5d1b0e7a11")


def campaign_ids() -> list[str]:
    return [str(uuid.uuid5(_NAMESPACE, f"campaign-{c}")) for c in range(CAMPAIGNS)]


def ad_campaigns() -> dict[str, str]:
    """The static ad → campaign mapping: CAMPAIGNS campaigns with ADS_PER_CAMPAIGN ads each, the same everywhere."""
    mapping = {}
    for c, campaign in enumerate(campaign_ids()):
        for a in range(ADS_PER_CAMPAIGN):
            mapping[str(uuid.uuid5(_NAMESPACE, f"ad-{c}-{a}"))] = campaign
    return mapping
