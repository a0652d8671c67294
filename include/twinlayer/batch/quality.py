"""Great Expectations gates of the batch layer, as code.

* ``validate_raw`` — the archived hour: required columns not null, enumerations, event times inside the hour,
  and reconciliation with the speed layer (the archive must hold at least as many distinct events as the speed
  layer counted for the hour: the speed layer drops late events, the archive never does). It also counts, per
  view, the distinct events the view's filter selects, over the records the batch job keeps
  (``batch.dedupe``), and the event ids whose records conflict.
* ``validate_version`` — the recomputed version's snapshot: schema, ranges, and reconciliation with the raw hour
  (every count measure of every view totals the distinct events its view selects). Nothing here names a view.

A failed gate raises ``QualityGateFailed`` naming each failed expectation; the caller stops before publishing.
"""

from __future__ import annotations

import dataclasses
import logging

from twinlayer.batch import dedupe
from twinlayer.model import events as ev
from twinlayer.model.hours import HOUR_MS
from twinlayer.model.views import VIEWS, View, exact_slot_name, selected, slot_name

log = logging.getLogger(__name__)


class QualityGateFailed(RuntimeError):
    def __init__(self, gate: str, failures: list[str]) -> None:
        super().__init__(f"{gate} gate failed: " + "; ".join(failures))
        self.gate = gate
        self.failures = failures


@dataclasses.dataclass
class GateResult:
    gate: str
    success: bool
    evaluated: int
    failures: list[str]
    facts: dict

    def raise_if_failed(self) -> None:
        if not self.success:
            raise QualityGateFailed(self.gate, self.failures)


def _run_suite(kind: str, frame, expectations: list, gate: str, facts: dict) -> GateResult:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    sources = context.data_sources
    source = sources.add_spark(gate) if kind == "spark" else sources.add_pandas(gate)
    definition = source.add_dataframe_asset(gate).add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=f"twinlayer_{gate}")
    for expectation in expectations:
        suite.add_expectation(expectation)
    result = definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    failures = []
    for item in result.results:
        if not item.success:
            config = item.expectation_config
            assert config is not None, "a validation result names its expectation"
            column = config.kwargs.get("column")
            detail = {
                k: v
                for k, v in (item.result or {}).items()
                if k in ("observed_value", "unexpected_count", "partial_unexpected_list")
            }
            failures.append(f"{config.type}{'(' + column + ')' if column else ''} {detail}")
    log.info("%s gate: %d expectations, %d failed", gate, len(result.results), len(failures))
    return GateResult(gate, bool(result.success), len(result.results), failures, facts)


def view_event_counts(raw, views: tuple[View, ...] = VIEWS) -> tuple[int, dict[str, int], int]:
    """(distinct events, view name → distinct events the view selects, conflicting duplicates) of archived records,
    in one pass, counted over the records the batch job keeps (``dedupe.first_received``): the views' totals must
    equal these whatever the duplicates carry."""
    from pyspark.sql import functions as F

    row = (
        dedupe.first_received(raw.where(F.col("event_id").isNotNull()))
        .agg(
            F.count(F.lit(1)).alias("_all"),
            F.count_if(F.col(dedupe.CONFLICTING)).alias("_conflicting"),
            *(F.count_if(F.coalesce(selected(v), F.lit(False))).alias(v.name) for v in views),
        )
        .first()
    )
    assert row is not None, "an aggregate without grouping has one row"
    return int(row["_all"]), {v.name: int(row[v.name]) for v in views}, int(row["_conflicting"])


def validate_raw(
    raw, hour_ms: int, speed_events: int | None, gate: str = "raw", views: tuple[View, ...] = VIEWS
) -> GateResult:
    """``raw``: the archived records of the hour (Spark). ``speed_events``: distinct events the speed layer counted
    for the hour (None when unknown, e.g. its cells already expired)."""
    import great_expectations.expectations as gxe

    total, per_view, conflicting = view_event_counts(raw, views)
    if conflicting:
        log.warning(
            "%s gate: %d event ids carry records of different content; the first record Kafka received counts",
            gate,
            conflicting,
        )
    expectations = [
        *(
            gxe.ExpectColumnValuesToNotBeNull(column=c)
            for c in ("event_id", "user_id", "ad_id", "campaign_id", "event_type", "event_time_ms")
        ),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=list(ev.EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeInSet(column="ad_type", value_set=list(ev.AD_TYPES)),
        gxe.ExpectColumnValuesToBeBetween(column="event_time_ms", min_value=hour_ms, max_value=hour_ms + HOUR_MS - 1),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
    ]
    if speed_events:
        # the archive keeps everything the speed layer counted, and more (late events)
        expectations.append(gxe.ExpectTableRowCountToBeBetween(min_value=speed_events))
    facts = {
        "raw_rows": raw.count(),
        "distinct_events": total,
        "view_events": per_view,
        "speed_events": speed_events,
        "conflicting_duplicates": conflicting,
    }
    return _run_suite("spark", raw, expectations, gate, facts)


def validate_version(snapshot, raw_facts: dict, views: tuple[View, ...] = VIEWS) -> GateResult:
    """``snapshot``: the version's rows (pandas, as written by the batch job). ``raw_facts``: from validate_raw."""
    import great_expectations.expectations as gxe

    expectations = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(snapshot.columns), exact_match=True),
        gxe.ExpectColumnValuesToNotBeNull(column="view"),
        gxe.ExpectColumnValuesToNotBeNull(column="key"),
        gxe.ExpectColumnValuesToBeInSet(column="view", value_set=[v.name for v in views]),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="window_end_ms", column_B="window_start_ms"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["view", "key", "window_start_ms"]),
    ]
    expected_events = raw_facts["view_events"]
    reconciliation: dict[str, tuple[int, int]] = {}
    for view in views:
        rows = snapshot[snapshot["view"] == view.name]
        for measure in view.measures:
            column = slot_name(view, measure)
            if measure.kind == "count":
                expectations.append(
                    gxe.ExpectColumnValuesToBeBetween(
                        column=column, min_value=1, row_condition=f'view=="{view.name}"', condition_parser="pandas"
                    )
                )
                reconciliation[f"{view.name}.{measure.name}"] = (
                    int(rows[column].sum()),
                    int(expected_events.get(view.name, 0)),
                )
            elif measure.kind == "distinct":
                exact = exact_slot_name(view, measure)
                expectations.append(
                    gxe.ExpectColumnValuesToBeBetween(
                        column=exact, min_value=1, row_condition=f'view=="{view.name}"', condition_parser="pandas"
                    )
                )
    result = _run_suite("pandas", snapshot, expectations, "view", {"reconciliation": reconciliation})
    for name, (stored, expected) in reconciliation.items():
        if stored != expected:
            result.success = False
            result.failures.append(f"reconciliation {name}: views total {stored} != raw distinct events {expected}")
    return result
