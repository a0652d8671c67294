"""Time as twinlayer counts it: epoch milliseconds, whole UTC hours, and the times people type.

Every layer partitions work by UTC hour — the archive's ``event_hour`` folders, batch versions, publications, the
DAGs' data intervals — and all of them spell an hour with ``hour_label``. Times typed on the command line or in a
URL are epoch ms, ISO-8601 or a duration back from now (30s, 15m, 2h, 7d).
"""

from __future__ import annotations

import datetime as dt
import time

HOUR_MS = 3_600_000
HOUR_LABEL_FORMAT = "%Y-%m-%dT%H"
SPARK_HOUR_LABEL_FORMAT = "yyyy-MM-dd'T'HH"  # the same label, in Spark's datetime pattern
UNITS_MS = {"s": 1000, "m": 60_000, "h": HOUR_MS, "d": 86_400_000}


def floor_hour(ms: int) -> int:
    """The start of the UTC hour holding ``ms``."""
    return ms - ms % HOUR_MS


def hour_label(hour_start_ms: int) -> str:
    return dt.datetime.fromtimestamp(hour_start_ms / 1000, dt.UTC).strftime(HOUR_LABEL_FORMAT)


def hour_start(label: str) -> int:
    return int(dt.datetime.strptime(label, HOUR_LABEL_FORMAT).replace(tzinfo=dt.UTC).timestamp() * 1000)


def hours_in(start_ms: int, end_ms: int) -> list[int]:
    """Hour starts covering [start_ms, end_ms); both ends must be whole hours."""
    if start_ms % HOUR_MS or end_ms % HOUR_MS or end_ms <= start_ms:
        raise ValueError(f"interval [{start_ms}, {end_ms}) is not a positive number of whole UTC hours")
    return list(range(start_ms, end_ms, HOUR_MS))


def iso(ms: int) -> str:
    """ISO-8601 in UTC, as Airflow's API and people read it."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


def parse_time(text: str, now_ms: int) -> int:
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text[:-1].isdigit() and text[-1:] in UNITS_MS:
        return now_ms - int(text[:-1]) * UNITS_MS[text[-1]]
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"cannot read time {text!r}: give epoch ms, ISO-8601 or a duration like 15m") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def hours_between(start: str, end: str, now_ms: int | None = None) -> tuple[int, int]:
    """The first and the last whole UTC hour of [start, end] as typed (an hour label ``2026-11-24T05``, ISO-8601,
    epoch ms or a duration back from now); the last must have ended."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    first, last = floor_hour(parse_time(start, now_ms)), floor_hour(parse_time(end, now_ms))
    if first > last:
        raise ValueError(f"the start {start} is after the end {end}")
    if last >= floor_hour(now_ms):
        raise ValueError(f"the end {end}: the hour {hour_label(last)} has not ended yet; backfill whole hours only")
    return first, last
