"""Merged windows as pandas DataFrames, for analysis in Python and SQL (``twinlayer sql``).

One row per window, as the serving API answers it: batch values for published hours, speed values after them, and
a ``source`` column saying which. One key, several keys, or every key a view holds in the range (listed from the
row keys of both tables, then answered key by key through ``Server.query``, so these frames and the API never
disagree).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from twinlayer.model.config import Settings, load_settings
from twinlayer.model.hours import parse_time
from twinlayer.model.views import View, by_name
from twinlayer.serving.merge import Server
from twinlayer.storage import hbase as hbase_store

if TYPE_CHECKING:
    import pandas as pd

LEADING = ["view", "key", "window_start", "window_end", "source", "version", "exact"]


def view_keys(server: Server, view: View, from_ms: int, to_ms: int) -> list[str]:
    """Every key of ``view`` with a window starting in [from_ms, to_ms) in either layer."""
    settings = server.settings
    found = set()
    for table in (settings.batch_table, settings.speed_table):
        found |= set(hbase_store.view_keys(server.pool, table, view.stored_name, from_ms, to_ms))
    return sorted(found)


def windows_frame(
    server: Server, view: View, from_ms: int, to_ms: int, keys: Sequence[str] | None = None
) -> pd.DataFrame:
    """The merged windows of ``view`` starting in [from_ms, to_ms) for ``keys`` (every key when None), oldest first
    per key; window bounds as UTC timestamps."""
    import pandas as pd

    server.check_range(from_ms, to_ms)
    rows = []
    for key in view_keys(server, view, from_ms, to_ms) if keys is None else keys:
        for window in server.query(view, key, from_ms, to_ms).windows:
            rows.append({"view": view.name, "key": key, **window})
    measures = [m.name for m in view.measures]
    frame = pd.DataFrame(rows, columns=[*LEADING[:2], "window_start_ms", "window_end_ms", *LEADING[4:], *measures])
    frame.insert(2, "window_start", pd.to_datetime(frame.pop("window_start_ms"), unit="ms", utc=True))
    frame.insert(3, "window_end", pd.to_datetime(frame.pop("window_end_ms"), unit="ms", utc=True))
    return frame.astype({"version": "Int64", **{m.name: "Int64" for m in view.measures if m.kind != "sum"}})


def windows(
    view: str,
    start: str = "24h",
    end: str | None = None,
    keys: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """``windows_frame`` by name: ``windows("campaign_activity_1m", "6h")``. ``start``/``end`` take epoch ms,
    ISO-8601 or a span back from now (15m, 2h, 7d); ``end`` defaults to now."""
    import time

    catalog = by_name()
    if view not in catalog:
        raise ValueError(f"unknown view {view!r}; views: {', '.join(catalog)}")
    now_ms = int(time.time() * 1000)
    from_ms, to_ms = parse_time(start, now_ms), parse_time(end, now_ms) if end else now_ms + 1
    return windows_frame(Server(settings or load_settings()), catalog[view], from_ms, to_ms, keys)
