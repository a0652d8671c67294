"""The Lambda page's HTML and the facts each hour keeps (pure logic, no services)."""

import dataclasses
import re

from twinlayer.batch.runs import hour_facts, record_hour_fact
from twinlayer.model.config import Settings
from twinlayer.ops.overview import HourRow
from twinlayer.ui import page
from twinlayer.ui.page import links

HOUR = 1_796_562_000_000  # 2026-12-06T13


def row(**changes) -> dict:
    base = HourRow("2026-12-06T13", HOUR, 3000, "batch", version=3000, previous=[2990], published_ms=HOUR + 7_200_000)
    return dataclasses.asdict(dataclasses.replace(base, **changes))


def overview(hours: list[dict]) -> dict:
    speed = {"kafka_lag_records": 12.0, "freshness_p50_seconds": 1.25, "freshness_p99_seconds": None}
    return {"boundary_ms": HOUR + 3_600_000, "speed": {**speed, "boundary_lag_seconds": 60.0}, "hours": hours}


def table_row(html: str, hour: str) -> str:
    found = re.search(f'<tr data-hour="{hour}">(.*?)</tr>', html)
    assert found, f"no row for {hour}"
    return found.group(1)


def test_each_hour_shows_both_layers_and_its_actions():
    html = page.lambda_page(
        overview(
            [
                row(
                    gates={"raw": {"success": True, "failures": []}, "version": {"success": False, "failures": ["x"]}},
                    drift={"campaign_views_10s": {"views": 0.0125}},
                    drift_version=2990,
                    speed_cells=True,
                    late_records=7,
                ),
                row(hour="2026-12-06T14", hour_ms=HOUR + 3_600_000, source="speed", version=None, previous=[]),
            ]
        ),
        links(Settings()),
        paused=False,
        days=2,
    )
    published = table_row(html, "2026-12-06T13")
    for shown in ("3,000", "batch", "3000", "2990", "raw", "✓", "✗", "campaign_views_10s.views 1.25%", "held"):
        assert shown in published, shown
    assert "of version 2990" in published  # the drift's own version
    assert 'data-action="rollback"' in published and 'data-previous="2990"' in published
    unpublished = table_row(html, "2026-12-06T14")
    assert "speed" in unpublished and 'data-action="recompute"' in unpublished
    assert 'data-action="rollback"' not in unpublished  # nothing to roll back to
    assert "2026-12-06 14:00 UTC" in html  # the boundary
    assert "1.2 s" in html and "no data" in html  # freshness p50, and p99 without samples
    assert "is paused" not in html
    assert "http://127.0.0.1:3000/d/twinlayer-speed" in html and "http://127.0.0.1:8000/docs" in html


def test_the_page_warns_that_a_paused_dag_will_not_run_what_it_starts():
    assert "twinlayer_recompute is paused" in page.lambda_page(overview([]), {}, paused=True, days=2)


def test_values_from_the_stores_are_escaped():
    html = page.hour_table([row(gates={"<raw>": {"success": False, "failures": ['<script>"']}})])
    assert "<script>" not in html and "&lt;raw&gt;" in html and "&lt;script&gt;&quot;" in html


def test_an_hour_keeps_the_latest_of_each_fact(tmp_path):
    settings = Settings(state_dir=tmp_path)
    assert hour_facts(settings, HOUR) == {}
    record_hour_fact(settings, HOUR, "gate_raw", {"success": False})
    record_hour_fact(settings, HOUR, "drift", {"version": 1})
    record_hour_fact(settings, HOUR, "gate_raw", {"success": True})
    assert hour_facts(settings, HOUR) == {"gate_raw": {"success": True}, "drift": {"version": 1}}
    assert hour_facts(settings, HOUR + 3_600_000) == {}
