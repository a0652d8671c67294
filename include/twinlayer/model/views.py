"""The one definition of every view, compiled into the Spark transformation both layers run.

A view is a name, an optional filter, dimensions, a tumbling event-time window and measures. ``aggregate`` turns
any DataFrame of valid events — a streaming micro-batch source or the Parquet archive — into one row per
(view, key, window) with every view's measures; nothing else in twinlayer knows how a view is computed. Adding a
view is adding a ``View`` to ``VIEWS``.

All views are computed by one aggregation over one read of the events, so a streaming query parses and
deduplicates each event once and keeps one state store and one watermark for every view.

Measures are mergeable so the serving layer can combine windows and layers: count, sum, min, max, and distinct
users as an Apache DataSketches HLL sketch (``hll_sketch_agg``). The batch layer asks for ``exact=True`` and gets
the exact distinct count beside the sketch, each from an aggregation of its own joined back.

Definitions change. Each view has a ``fingerprint`` (a hash of everything that decides its values) and is stored
under ``stored_name`` (name and fingerprint), so two definitions of a view never share a cell; the speed layer keys
its views checkpoint by ``views_fingerprint`` and batch versions record the fingerprints they were computed with.
``TWINLAYER_VIEWS`` may name a TOML file of ``[[view]]`` tables that replaces the definitions below (``view_files``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from twinlayer.model.events import ENUMS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

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

    @functools.cached_property
    def fingerprint(self) -> str:
        """Eight hex digits of a hash of what decides the view's values (not its description)."""
        definition = {
            "name": self.name,
            "dimensions": list(self.dimensions),
            "window_seconds": self.window_seconds,
            "filter": self.filter,
            "measures": [[m.name, m.kind, m.column] for m in self.measures],
            "hll_lg_k": HLL_LG_K,
        }
        return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def stored_name(self) -> str:
        """The view's part of its HBase row keys: one definition's cells never meet another's."""
        return f"{self.name}{STORED_SEPARATOR}{self.fingerprint}"


STORED_SEPARATOR = "@"


def views_fingerprint(views: Sequence[View]) -> str:
    """Eight hex digits naming a list of definitions, in order (the views query's state lays its columns out in
    that order): the speed layer's views checkpoint is kept under it."""
    return hashlib.sha256(",".join(v.stored_name for v in views).encode()).hexdigest()[:8]


def fingerprints(views: Sequence[View]) -> dict[str, str]:
    """View name → fingerprint: what a batch version records of the definitions it was computed with."""
    return {view.name: view.fingerprint for view in views}


def definitions_key(recorded: Mapping[str, str] | None) -> str:
    """Eight hex digits naming a recorded set of definitions (``fingerprints``), whatever its order: a batch
    version's snapshot is kept under it beside the version number."""
    return hashlib.sha256(json.dumps(dict(recorded or {}), sort_keys=True).encode()).hexdigest()[:8]


DEFAULT_VIEWS: tuple[View, ...] = (
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


def configured_views() -> tuple[View, ...]:
    """The views of the file ``TWINLAYER_VIEWS`` names (``view_files``), else ``DEFAULT_VIEWS``."""
    path = os.environ.get("TWINLAYER_VIEWS")
    if not path:
        return DEFAULT_VIEWS
    from twinlayer.model.view_files import load_views

    return load_views(path)


VIEWS: tuple[View, ...] = configured_views()


def by_name(views: Sequence[View] = VIEWS) -> dict[str, View]:
    return {view.name: view for view in views}


def by_stored_name(views: Sequence[View] = VIEWS) -> dict[str, View]:
    return {view.stored_name: view for view in views}


def slot_name(view: View, measure: Measure) -> str:
    """The output column holding ``measure`` of ``view`` in ``aggregate``'s result."""
    return f"{view.name}__{measure.name}"


def exact_slot_name(view: View, measure: Measure) -> str:
    return f"{slot_name(view, measure)}__exact"


def key_of(values: Sequence[object]) -> str:
    """The row key part for one combination of dimension values."""
    return KEY_SEPARATOR.join(str(v) for v in values)


def key_shape(view: View) -> str:
    """How a key of ``view`` is written: its dimension names joined by ``KEY_SEPARATOR``."""
    return KEY_SEPARATOR.join(view.dimensions)


def check_key(view: View, key: str) -> None:
    """Raise ValueError, showing the expected shape, when ``key`` cannot be a key of ``view``: one non-empty value
    per dimension, and a value an enumerated dimension allows."""
    values = key.split(KEY_SEPARATOR)
    problem = None
    if len(values) != len(view.dimensions) or not all(values):
        problem = f"{len(view.dimensions)} value(s), none empty" if len(view.dimensions) > 1 else "one value, no '|'"
    else:
        for dimension, value in zip(view.dimensions, values, strict=True):
            allowed = ENUMS.get(dimension)
            if allowed and value not in allowed:
                problem = f"{dimension} is one of {', '.join(allowed)}"
                break
    if problem:
        shape = KEY_SEPARATOR.join(f"<{d}>" for d in view.dimensions)
        raise ValueError(f"a key of {view.name} looks like {shape} ({problem}); got {key!r}")


def event_count(views: Sequence[View] = VIEWS) -> tuple[View, Measure] | None:
    """A view and count measure that count every valid event (no filter): what the batch gates hold against the
    archive and the speed layer. None when no view counts all events."""
    for view in views:
        if view.filter is None:
            for measure in view.measures:
                if measure.kind == "count":
                    return view, measure
    return None


def key_column(view: View) -> Column:
    """The Spark column holding ``view``'s key (its dimension values joined by ``KEY_SEPARATOR``)."""
    from pyspark.sql import functions as F

    return F.concat_ws(KEY_SEPARATOR, *(F.col(d).cast("string") for d in view.dimensions))


def selected(view: View) -> Column:
    """The Spark condition choosing the events ``view`` counts (true when it has no filter)."""
    from pyspark.sql import functions as F

    return F.lit(True) if view.filter is None else F.expr(view.filter)


def coarse_window_seconds(views: Sequence[View]) -> int:
    """The least common multiple of the views' windows: each view window lies inside exactly one coarse window."""
    return functools.reduce(math.lcm, (view.window_seconds for view in views))


def aggregate(events: DataFrame, views: Sequence[View] = VIEWS, exact: bool = False) -> DataFrame:
    """Valid events → one row per (view, key, window) with columns view, key, window_start_ms, window_end_ms and one
    column per (view, measure) (``slot_name``), null outside its own view. With ``exact``, distinct measures also
    get the exact count in ``exact_slot_name`` (not possible in a streaming query), 0 outside its own view: each
    from an aggregation of its own over its view's exploded entries, left-joined back on the group. (Those
    aggregations read, dedupe and explode the events again; Spark shares only identical shuffles between them.)

    Without ``exact`` every event is read once: one projection makes an array of per-view entries (those whose
    filter holds) and explodes it, and one aggregation groups them. The grouping includes the event-time window of
    ``coarse_window_seconds`` — a multiple of every view's window — so a streaming query's watermark can evict a
    group once its coarse window is behind it; the view's own window is grouped as a plain column.
    """
    from pyspark.sql import functions as F

    slots = [(view, measure) for view in views for measure in view.measures]
    types = dict(events.dtypes)
    event_ms = F.unix_millis("event_time")

    def slot_input(view: View, measure: Measure, own: View) -> Column:
        if measure.column is None:
            return F.lit(1).cast("int") if view is own else F.lit(None).cast("int")
        kind_type = types[measure.column]
        if view is not own:
            return F.lit(None).cast(kind_type)
        return F.col(measure.column)

    entries = []
    for own in views:
        entry = F.struct(
            F.lit(own.name).alias("view"),
            key_column(own).alias("key"),
            (event_ms - F.pmod(event_ms, F.lit(own.window_ms))).alias("window_start_ms"),
            F.lit(own.window_ms).cast("bigint").alias("window_ms"),
            *(slot_input(view, measure, own).alias(slot_name(view, measure)) for view, measure in slots),
        )
        entries.append(entry if own.filter is None else F.when(selected(own), entry))
    # explode then drop the null entries: a higher-order filter inside the explode would keep the generator out of
    # code generation and re-derive the array's type for every event (a tenth of the views query's CPU)
    exploded = (
        events.select(
            F.window("event_time", f"{coarse_window_seconds(views)} seconds").alias("coarse"),
            F.explode(F.array(*entries)).alias("e"),
        )
        .where(F.col("e").isNotNull())
        .select("coarse", "e.*")
    )

    grouping = ["view", "key", "coarse", "window_start_ms", "window_ms"]
    aggregations, columns = [], []
    for view, measure in slots:
        column = slot_name(view, measure)
        columns.append(F.col(column))
        if measure.kind == "count":
            aggregations.append(F.count(column).alias(column))
        elif measure.kind == "distinct":
            aggregations.append(F.hll_sketch_agg(column, HLL_LG_K).alias(column))
            if exact:
                columns.append(
                    F.coalesce(exact_slot_name(view, measure), F.lit(0)).alias(exact_slot_name(view, measure))
                )
        else:
            aggregations.append(getattr(F, measure.kind)(column).alias(column))
    grouped = exploded.groupBy(*grouping).agg(*aggregations)
    if exact:
        # each exact distinct count in an aggregation of its own, joined back: beside the other aggregates, Spark
        # would expand every row once per distinct column to count them in one pass (2M events: 6.8 s of 23 s)
        for view, measure in slots:
            if measure.kind == "distinct":
                column = slot_name(view, measure)
                counts = (
                    exploded.where(F.col("view") == view.name)
                    .groupBy(*grouping)
                    .agg(F.count_distinct(column).alias(exact_slot_name(view, measure)))
                )
                grouped = grouped.join(counts, on=grouping, how="left")  # no count outside its own view: 0
    return grouped.select(
        "view",
        "key",
        "window_start_ms",
        (F.col("window_start_ms") + F.col("window_ms")).alias("window_end_ms"),
        *columns,
    )
