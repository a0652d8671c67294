"""The recompute DAG run by the stack's real Airflow (scheduler, LocalExecutor, SparkSubmitOperator) for one past
hour of the stack's own pipeline, then read back through the serving HTTP API."""

import datetime as dt
import json
import time

import pytest
import requests

from tests import truth
from tests.browser import chromium_page, log_in_to_airflow
from tests.past_hours import archive_past_events, unused_past_hours
from tests.sockets import ListeningSampler, exposed
from twinlayer.batch import late
from twinlayer.cli import main as cli_main
from twinlayer.localstack.airflow_api import AirflowClient
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.serving.merge import Server

pytestmark = pytest.mark.integration
DAG_ID = "twinlayer_recompute"


def batch_cells_of(settings, first_hour: int, hours: int) -> dict:
    import happybase

    from twinlayer.storage.hbase import parse_row_key

    conn = happybase.Connection(settings.host, settings.thrift_port, timeout=60000)
    try:
        table = conn.table(settings.batch_table)
        end = first_hour + hours * HOUR_MS
        return {
            row: {col: table.cells(row, col, versions=10, include_timestamp=True) for col in data}
            for row, data in table.scan(columns=[b"m"])
            if first_hour <= parse_row_key(row)[2] < end
        }
    finally:
        conn.close()


def test_dag_run_recomputes_publishes_and_serving_answers_from_the_batch_layer(stack, settings, spark):
    hour = unused_past_hours(spark, settings)
    archive_past_events(spark, settings, hour, 3000)

    run_id = f"test_{hour_label(hour)}_{int(time.time())}"
    result = AirflowClient.for_stack(settings).run_interval(DAG_ID, hour, hour + HOUR_MS, run_id)
    assert result["state"] == "success", result["tasks"]
    assert set(result["tasks"].values()) == {"success"}
    print(f"DAG run wall time: {result['seconds']:.0f}s")

    records = [
        r
        for r in truth.read_topic(settings.kafka_bootstrap, settings.events_topic)
        if hour <= (truth.event_time_of(r) or 0) < hour + HOUR_MS
    ]
    events = truth.dedupe_first([e for _, e in truth.classify(records).valid])
    expected = {c: v for c, v in truth.view_cells(events).items() if c[0] == "campaign_views_10s"}
    key = sorted({k for _, k, _ in expected})[0]
    answer = requests.get(
        f"{settings.url('serving_port')}/views/campaign_views_10s",
        timeout=10,
        params={"key": key, "from": str(hour), "to": str(hour + HOUR_MS)},
    ).json()
    assert answer["boundary_ms"] >= hour + HOUR_MS
    assert {w["window_start_ms"]: w["views"] for w in answer["windows"]} == {
        s: c["views"] for (_, k, s), c in expected.items() if k == key
    }
    assert {w["source"] for w in answer["windows"]} == {"batch"}


def test_airflow_backfill_of_two_hours_publishes_each_and_a_second_backfill_changes_no_cell(
    stack, settings, spark, capsys
):
    first = unused_past_hours(spark, settings, n=2)
    archive_past_events(spark, settings, first, 3000, hours=2, seed=41)
    last = first + HOUR_MS
    capsys.readouterr()
    command = ["backfill", DAG_ID, "--from", hour_label(first), "--to", hour_label(last), "--json"]
    assert cli_main(command) == 0, capsys.readouterr().err  # the backfill a person starts from the command line
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs == {hour_label(first + i * HOUR_MS): "success" for i in range(2)}
    client = AirflowClient.for_stack(settings)
    publications = Server(settings).publications()
    assert all(hour_label(first + i * HOUR_MS) in publications for i in range(2))
    cells = batch_cells_of(settings, first, 2)
    assert cells

    again = client.backfill(DAG_ID, first, last, reprocess=True)
    assert set(again.values()) == {"success"}
    assert batch_cells_of(settings, first, 2) == cells
    assert Server(settings).publications() == publications


def test_a_backfill_created_in_the_airflow_ui_publishes_its_hour(stack, settings, spark):
    """What a person does: the DAG's Trigger button, "Backfill", one hour From and To, "Run Backfill". While the
    run's batch job lives, every socket it listens on is on loopback."""
    hour = unused_past_hours(spark, settings)
    archive_past_events(spark, settings, hour, 800, seed=71)
    when = dt.datetime.fromtimestamp(hour / 1000, dt.UTC)
    with ListeningSampler("batch_recompute.py") as batch_job:
        create_backfill_in_the_ui(settings, when)
        client = AirflowClient.for_stack(settings)
        deadline = time.monotonic() + 600
        while (runs := client.backfill_runs(DAG_ID, hour, hour)).get(hour) not in ("success", "failed"):
            assert time.monotonic() < deadline, f"the UI's backfill of {hour_label(hour)} did not finish: {runs}"
            time.sleep(5)
    assert runs == {hour: "success"}
    assert hour_label(hour) in Server(settings).publications()
    assert batch_job.processes_seen and batch_job.seen, "the batch job was not seen listening"
    assert exposed(batch_job.seen) == set()


def create_backfill_in_the_ui(settings, when: dt.datetime) -> None:
    with chromium_page() as page:
        log_in_to_airflow(page, settings, f"/dags/{DAG_ID}")
        page.get_by_role("button", name="Trigger").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Backfill", exact=True).click()
        for field in range(2):  # From, To: the same hour
            dialog.get_by_test_id("datetime-input").nth(field).click()
            picker = page.locator("[data-scope=popover][data-part=content]:visible").last
            picker.get_by_placeholder("YYYY/MM/DD").fill(when.strftime("%Y/%m/%d"))
            picker.get_by_placeholder("HH:mm").fill(when.strftime("%H:%M"))
            dialog.get_by_text("Date Range").click()
        dialog.get_by_text("1 run will be triggered").wait_for(timeout=30_000)
        dialog.get_by_role("button", name="Run Backfill").click()
        dialog.wait_for(state="hidden", timeout=90_000)  # Airflow creates the backfill before closing it


def test_late_events_of_a_published_hour_are_recomputed_by_the_late_data_dag(stack, settings, spark):
    hour = unused_past_hours(spark, settings)
    label = hour_label(hour)
    archive_past_events(spark, settings, hour, 1000, seed=51)
    client = AirflowClient.for_stack(settings)
    first = client.run_interval(DAG_ID, hour, hour + HOUR_MS, f"test_{label}_{int(time.time())}")
    assert first["state"] == "success", first["tasks"]
    version = Server(settings).publications()[label]["version"]
    assert label not in {h["hour"] for h in late.late_hours(settings)}

    archive_past_events(spark, settings, hour, 200, seed=52)  # later than any watermark: only the archive has them
    waiting = {h["hour"]: h for h in late.late_hours(settings)}
    assert waiting[label]["published"] == version and waiting[label]["archived"] == version + 200

    now_ms = int(time.time() * 1000)  # the finder looks at the whole archive: its data interval does not matter
    with client.unpaused(DAG_ID):
        finder = client.run_interval("twinlayer_late_recompute", now_ms - 60_000, now_ms, f"test_late_{now_ms}")
        assert finder["state"] == "success", finder["tasks"]
        mapped = client._call("GET", f"/dags/twinlayer_late_recompute/dagRuns/test_late_{now_ms}/taskInstances")
        assert label in {t["rendered_map_index"] for t in mapped["task_instances"] if t["map_index"] >= 0}
        rerun = client.wait(DAG_ID, f"late__{label}__{version + 200}", timeout=600)
    assert rerun["state"] == "success", rerun["tasks"]
    entry = Server(settings).publications()[label]
    assert entry["version"] == version + 200 and entry["previous"][0] == version
    assert label not in {h["hour"] for h in late.late_hours(settings)}
