"""Reading the times people type: epoch ms, ISO-8601, or a duration back from now (30s, 15m, 2h, 7d)."""

from __future__ import annotations

import datetime as dt

UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


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
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp() * 1000)
