"""The one definition of every view, compiled into the Spark transformation both layers run.

A view is a name, an optional filter, dimensions, a tumbling event-time window and measures. ``aggregate`` turns
any DataFrame of valid events — a streaming micro-batch source or the Parquet archive — into one row per
(view, key, window) with every view's measures; nothing else in twinlayer knows how a view is computed. Adding a
view is adding a ``View`` to ``VIEWS``.

All views are computed by one aggregation: each view projects the events into a common shape (view name, key,
window, one input column per measure slot) and the union is grouped once. In a streaming query this keeps one
state store and one watermark for every view, and per-view window ends still decide when each window is final.

Measures are mergeable so the serving layer can combine windows and layers: count, sum, min, max, and distinct
users as an Apache DataSketches HLL sketch (``hll_sketch_agg``). The batch layer asks for ``exact=True`` and gets
the exact distinct count beside the sketch.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Literal

MeasureKind = Literal["count", "sum", "min", "max", "distinct"]
HLL_LG_K = 12
KEY_SEPARATOR = "|"


@dataclasses.dataclass(frozen=True)
class Measure:
    name: str
    kind: MeasureKind
    column: str | None = None  # the event column the measure reads; none for count

    def __post_init__(self) -> None:
        if self.kind not in ("count", "sum", "min", "max", "distinct"):
            raise ValueError(f"measure {self.name!r}: unknown kind {self.kind!r}")
        if (self.kind == "count") != (self.column is None):
            raise ValueError(f"measure {self.name!r}: count takes no column, every other kind needs one")


@dataclasses.dataclass(frozen=True)
class View:
    name: str
    dimensions: tuple[str, ...]
    window_seconds: int
    measures: tuple[Measure, ...]
    filter: str | None = None  # a Spark SQL predicate over the event columns
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"view name {self.name!r} must be an identifier")
        if self.window_seconds <= 0:
            raise ValueError(f"view {self.name!r}: window_seconds must be positive")
        if not self.dimensions or not self.measures:
            raise ValueError(f"view {self.name!r} needs at least one dimension and one measure")
        names = [m.name for m in self.measures]
        if len(set(names)) != len(names) or any(n.startswith("_") for n in names):
            raise ValueError(f"view {self.name!r}: measure names must be unique and not start with '_'")

    @property
    def window_ms(self) -> int:
        return self.window_seconds * 1000

    def measure(self, name: str) -> Measure:
        return next(m for m in self.measures if m.name == name)


VIEWS: tuple[View, ...] = (
    View(
        name="campaign_views_10s",
        dimensions=("campaign_id",),
        window_seconds=10,
        filter="event_type = 'view'",
        measures=(Measure("views", "count"),),
        description="Yahoo Streaming Benchmark: ad views per campaign per 10-second window.",
    ),
    View(
        name="campaign_activity_1m",
        dimensions=("campaign_id", "event_type"),
        window_seconds=60,
        measures=(
            Measure("events", "count"),
            Measure("users", "distinct", "user_id"),
            Measure("first_event_ms", "min", "event_time_ms"),
            Measure("last_event_ms", "max", "event_time_ms"),
        ),
        description="Events and distinct users per campaign and event type per minute.",
    ),
)


def by_name(views: Sequence[View] = VIEWS) -> dict[str, View]:
    return {view.name: view for view in views}


def slot_name(view: View, measure: Measure) -> str:
    """The output column holding ``measure`` of ``view`` in ``aggregate``'s result."""
    return f"{view.name}__{measure.name}"


def exact_slot_name(view: View, measure: Measure) -> str:
    return f"{slot_name(view, measure)}__exact"


def key_of(values: Sequence[object]) -> str:
    """The row key part for one combination of dimension values."""
    return KEY_SEPARATOR.join(str(v) for v in values)


def aggregate(events, views: Sequence[View] = VIEWS, exact: bool = False):
    """Valid events → one row per (view, key, window) with columns view, key, window_start_ms, window_end_ms and one
    column per (view, measure) (``slot_name``), null outside its own view. With ``exact``, distinct measures also
    get the exact count in ``exact_slot_name`` (not possible in a streaming query)."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    slots = [(view, measure) for view in views for measure in view.measures]
    types = dict(events.dtypes)

    def slot_input(view: View, measure: Measure, own: View):
        kind_type = "int" if measure.kind == "count" else types[measure.column]
        if view is not own:
            return F.lit(None).cast(kind_type)
        return F.lit(1) if measure.kind == "count" else F.col(measure.column)

    projections = []
    for own in views:
        source = events if own.filter is None else events.where(own.filter)
        projections.append(source.select(
            F.lit(own.name).alias("view"),
            F.concat_ws(KEY_SEPARATOR, *(F.col(d).cast("string") for d in own.dimensions)).alias("key"),
            F.window("event_time", f"{own.window_seconds} seconds").alias("window"),
            *(slot_input(view, measure, own).alias(slot_name(view, measure)) for view, measure in slots),
        ))
    unioned = functools.reduce(DataFrame.unionByName, projections)

    aggregations = []
    for view, measure in slots:
        column = slot_name(view, measure)
        if measure.kind == "count":
            aggregations.append(F.count(column).alias(column))
        elif measure.kind == "distinct":
            aggregations.append(F.hll_sketch_agg(column, HLL_LG_K).alias(column))
            if exact:
                aggregations.append(F.count_distinct(column).alias(exact_slot_name(view, measure)))
        else:
            aggregations.append(getattr(F, measure.kind)(column).alias(column))
    grouped = unioned.groupBy("view", "key", "window").agg(*aggregations)
    return grouped.select("view", "key", F.unix_millis("window.start").alias("window_start_ms"),
                          F.unix_millis("window.end").alias("window_end_ms"), *grouped.columns[3:])
