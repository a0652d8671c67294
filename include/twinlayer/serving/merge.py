"""The serving layer: batch views before the time boundary, speed views after it, and every answer says which.

``merge`` is pure: given the publications, the batch windows of the published hours and the speed windows, it
picks for each window its batch value when the window's hour is published, else its speed value. ``query`` reads
HBase and calls it. Distinct measures answer with the exact count from the batch layer and the sketch estimate
from the speed layer; ``exact`` says which.

Definitions: a published hour counts as published for a view only when its version was computed with the view's
current definition (``definition_matches``); otherwise the speed layer answers it, from its cells of the current
definition, and the answer names the hour in ``other_definition_hours``. A batch value of one definition never
meets a speed value of another.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence

from twinlayer.batch.publish import boundary, definition_matches, published
from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS, floor_hour, hour_label
from twinlayer.model.views import View, check_key
from twinlayer.storage import hbase as hbase_store
from twinlayer.storage.hbase import TS_DIGITS, WindowValue

LAST_MS = 10**TS_DIGITS  # row keys spell a window's start in this many digits


@dataclasses.dataclass
class Answer:
    view: str
    key: str
    from_ms: int
    to_ms: int
    boundary_ms: int | None
    fingerprint: str
    other_definition_hours: list[str]
    windows: list[dict]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def present(view: View, window: WindowValue, source: str, version: int | None) -> dict:
    values: dict[str, object] = {}
    exact = True
    for measure in view.measures:
        if measure.kind == "distinct":
            if f"{measure.name}.exact" in window.measures:
                values[measure.name] = window.measures[f"{measure.name}.exact"]
            elif measure.name in window.measures:
                values[measure.name] = round(hbase_store.sketch_estimate(window.measures[measure.name]))
                exact = False
        elif measure.name in window.measures:
            values[measure.name] = window.measures[measure.name]
    return {
        "window_start_ms": window.window_start_ms,
        "window_end_ms": window.window_end_ms,
        "source": source,
        "version": version,
        "exact": exact,
        **values,
    }


def merge(
    view: View,
    publications: Mapping[int, dict],
    batch: Mapping[int, Sequence[WindowValue]],
    speed: Sequence[WindowValue],
) -> list[dict]:
    """One entry per window, oldest first: batch for published hours, speed for the rest."""
    windows = []
    for hour, rows in batch.items():
        version = publications[hour]["version"]
        windows += [present(view, w, "batch", version) for w in rows]
    windows += [present(view, w, "speed", None) for w in speed if floor_hour(w.window_start_ms) not in publications]
    return sorted(windows, key=lambda w: w["window_start_ms"])


def unpublished_spans(publications: Mapping[int, dict], from_ms: int, to_ms: int) -> list[tuple[int, int]]:
    """The parts of [from_ms, to_ms) outside every published hour, in order: where the speed layer answers (its
    cells of published hours stay until the table's TTL and are never read)."""
    spans: list[tuple[int, int]] = []
    start = from_ms
    for hour in sorted(h for h in publications if floor_hour(from_ms) <= h < to_ms):
        if start < hour:
            spans.append((start, hour))
        start = max(start, hour + HOUR_MS)
    if start < to_ms:
        spans.append((start, to_ms))
    return spans


class Server:
    """Reads both tables through one Thrift connection pool. The publications (one row, changed once an hour) are
    read at most every ``serving_publications_max_age_seconds`` by queries; ``publications()`` reads them now."""

    def __init__(self, settings: Settings, pool=None) -> None:
        self.settings = settings
        self.pool = pool or hbase_store.pool_for(settings, size=settings.serving_connections)
        self._publications: tuple[float, dict[int, dict]] = (float("-inf"), {})
        self._failure: tuple[float, Exception] | None = None
        self._reading = threading.Lock()

    def current_publications(self) -> dict[int, dict]:
        """The publications as read at most ``serving_publications_max_age_seconds`` ago: an older copy is read
        again, once, while the requests that found it old wait for that read. A read that failed fails the
        requests of the next ``serving_publications_max_age_seconds`` at once instead of each trying again."""
        max_age = self.settings.serving_publications_max_age_seconds
        read_at, publications = self._publications
        if time.monotonic() - read_at < max_age:
            return publications
        with self._reading:
            read_at, publications = self._publications
            if time.monotonic() - read_at < max_age:
                return publications
            if self._failure is not None and time.monotonic() - self._failure[0] < max_age:
                raise self._failure[1]
            started = time.monotonic()
            try:
                publications = published(self.pool, self.settings)
            except Exception as exc:
                self._failure = (time.monotonic(), exc)
                raise
            self._failure = None
            self._publications = (started, publications)
            return publications

    def check_range(self, from_ms: int, to_ms: int) -> None:
        """Raise ValueError for a range no answer should be read for: reversed, outside the row keys' time span, or
        longer than ``serving_max_range_hours`` (an answer's size and its time grow with the range)."""
        if not 0 <= from_ms < to_ms <= LAST_MS:
            raise ValueError(f"a range needs 0 <= from < to <= {LAST_MS} (epoch ms); got from={from_ms}, to={to_ms}")
        longest = self.settings.serving_max_range_hours * HOUR_MS
        if to_ms - from_ms > longest:
            raise ValueError(
                f"a range of {(to_ms - from_ms) / HOUR_MS:,.1f} hours is longer than the {longest // HOUR_MS} hours "
                "one answer may cover (TWINLAYER_SERVING_MAX_RANGE_HOURS)"
            )

    def query(self, view: View, key: str, from_ms: int, to_ms: int) -> Answer:
        """The merged windows of ``view`` for ``key`` starting in [from_ms, to_ms). Raises ValueError for a key of
        the wrong shape or a range ``check_range`` refuses, before reading anything."""
        check_key(view, key)
        self.check_range(from_ms, to_ms)
        every = self.current_publications()
        publications = {h: entry for h, entry in every.items() if definition_matches(entry, view)}
        other = [hour_label(h) for h in sorted(every) if h not in publications and floor_hour(from_ms) <= h < to_ms]
        batch = {}
        for hour in sorted(h for h in publications if floor_hour(from_ms) <= h < to_ms):
            batch[hour] = hbase_store.read_view(
                self.pool,
                self.settings.batch_table,
                view,
                key,
                max(hour, from_ms),
                min(hour + HOUR_MS, to_ms),
                version=publications[hour]["version"],
            )
        speed = [
            window
            for start, end in unpublished_spans(publications, from_ms, to_ms)
            for window in hbase_store.read_view(self.pool, self.settings.speed_table, view, key, start, end)
        ]
        return Answer(
            view.name,
            key,
            from_ms,
            to_ms,
            boundary(every),
            view.fingerprint,
            other,
            merge(view, publications, batch, speed),
        )

    def publications(self) -> dict[str, dict]:
        return {hour_label(h): entry for h, entry in sorted(published(self.pool, self.settings).items())}
