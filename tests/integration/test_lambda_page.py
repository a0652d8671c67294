"""The Lambda page, the Airflow plugin and the analysis interfaces on the real stack: one past hour archived by the
stack's speed layer and published by a real run of the recompute DAG, then seen through the plugin's API (signed in
and not), a real headless Chromium, Airflow's asset events and connections, `twinlayer sql` and the pandas API."""

import json
import time

import pytest
import requests

from tests import truth
from tests.browser import chromium_page, log_in_to_airflow
from tests.past_hours import archive_past_events, unused_past_hours
from twinlayer.batch import publish as publishing
from twinlayer.cli import main as cli_main
from twinlayer.localstack.airflow_api import AirflowClient
from twinlayer.localstack.services import airflow_login
from twinlayer.model.config import CONNECTIONS
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.serving.frames import windows
from twinlayer.serving.merge import Server
from twinlayer.storage import archive
from twinlayer.storage import hbase as hbase_store

pytestmark = pytest.mark.integration
DAG_ID = "twinlayer_recompute"


@pytest.fixture(scope="module")
def client(stack, settings):
    return AirflowClient.for_stack(settings)


@pytest.fixture(scope="module")
def published_hour(stack, settings, spark, client):
    """A past hour of 1,500 events, archived by the stack's speed layer and published by a DAG run."""
    hour = unused_past_hours(spark, settings)
    sent_from_ms = int(time.time() * 1000) - 1000
    archive_past_events(spark, settings, hour, 1500, seed=83)
    run_id = f"test_lambda_{hour_label(hour)}_{int(time.time())}"
    result = client.run_interval(DAG_ID, hour, hour + HOUR_MS, run_id)
    assert result["state"] == "success", result["tasks"]
    return {"hour": hour, "label": hour_label(hour), "run_id": run_id, "sent_from_ms": sent_from_ms}


def plugin(settings, path: str, token: str | None = None, method: str = "GET", **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{settings.url('airflow_port')}/twinlayer{path}"
    return requests.request(method, url, headers=headers, timeout=60, **kwargs)


def token_of(client: AirflowClient) -> str:
    return client.session.headers["Authorization"].removeprefix("Bearer ")


def test_the_plugin_answers_only_a_signed_in_airflow_user(stack, settings, client):
    for method, path in [
        ("GET", "/lambda"),
        ("GET", "/api/overview"),
        ("GET", f"/run?dag_id={DAG_ID}&run_id=x"),
        ("POST", "/api/hours/2026-12-01T05/recompute"),
        ("POST", "/api/hours/2026-12-01T05/rollback"),
        ("POST", "/api/backfills"),
    ]:
        assert plugin(settings, path, method=method).status_code == 401, path
        assert plugin(settings, path, "not-a-token", method).status_code == 403, path
    answer = plugin(settings, "/api/overview", token_of(client))
    assert answer.status_code == 200 and {"boundary_ms", "speed", "hours"} <= answer.json().keys()
    refused = plugin(settings, "/api/hours/yesterday/recompute", token_of(client), "POST", json={})
    assert refused.status_code == 400 and "2026-12-01T05" in refused.json()["detail"]
    # a form another site posts with the user's cookie is no action's body
    form = plugin(settings, "/api/hours/2026-12-01T05/rollback", token_of(client), "POST", data={"a": "b"})
    assert form.status_code == 422


def test_a_viewer_may_read_the_page_but_not_act(stack, settings):
    viewer = AirflowClient(settings.url("airflow_port"), airflow_login(settings, "viewer"))
    assert plugin(settings, "/api/overview", token_of(viewer)).status_code == 200
    for path in ("/api/hours/2026-12-01T05/recompute", "/api/hours/2026-12-01T05/rollback"):
        assert plugin(settings, path, token_of(viewer), "POST", json={}).status_code == 403, path
    body = {"from_hour": "2026-12-01T05", "to_hour": "2026-12-01T05"}
    assert plugin(settings, "/api/backfills", token_of(viewer), "POST", json=body).status_code == 403


def test_make_up_created_the_connections_the_tasks_read(stack, settings, client):
    for conn_id, (port_field, _) in CONNECTIONS.items():
        connection = client._call("GET", f"/connections/{conn_id}")
        assert (connection["host"], connection["port"]) == (settings.host_of(port_field), getattr(settings, port_field))


def test_the_overview_and_the_run_view_show_the_published_hour(published_hour, settings, client):
    label = published_hour["label"]
    version = Server(settings).publications()[label]["version"]
    rows = {row["hour"]: row for row in plugin(settings, "/api/overview?days=7", token_of(client)).json()["hours"]}
    row = rows[label]
    assert row["archived"] == archive.hour_counts(settings.archive_dir)[label] == version
    assert (row["source"], row["version"], row["late_records"]) == ("batch", version, 0)
    assert row["gates"]["raw"]["success"] and row["gates"]["view"]["success"]
    assert row["gates"]["view"]["version"] == version
    run_view = plugin(settings, f"/run?dag_id={DAG_ID}&run_id={published_hour['run_id']}", token_of(client))
    assert run_view.status_code == 200
    assert f"Hour {label}" in run_view.text and f'<tr data-hour="{label}">' in run_view.text
    assert "success" in run_view.text


def test_publishing_is_an_asset_event_that_names_the_hour_and_its_version(published_hour, settings, client):
    (asset,) = client._call("GET", "/assets", params={"name_pattern": "twinlayer_batch_views"})["assets"]
    events = client._call(
        "GET", "/assets/events", params={"asset_id": asset["id"], "source_run_id": published_hour["run_id"]}
    )["asset_events"]
    assert len(events) == 1
    entry = Server(settings).publications()[published_hour["label"]]
    assert events[0]["extra"]["hour"] == published_hour["label"]
    assert events[0]["extra"]["version"] == entry["version"]


def test_a_rollback_from_the_page_serves_the_previous_version_and_refuses_when_there_is_none(
    published_hour, settings, client
):
    hour, label = published_hour["hour"], published_hour["label"]
    pool = hbase_store.pool_for(settings, size=1)
    version = Server(settings).publications()[label]["version"]
    publishing.publish(pool, settings, hour, version + 1)  # a newer pointer (the same cells) to roll back from
    answer = plugin(settings, f"/api/hours/{label}/rollback", token_of(client), "POST", json={})
    assert answer.status_code == 200, answer.text
    entry = Server(settings).publications()[label]
    assert (entry["version"], entry["rolled_back_from"]) == (version, version + 1)
    assert answer.json()["details"]["version"] == version
    again = plugin(settings, f"/api/hours/{label}/rollback", token_of(client), "POST", json={})
    assert again.status_code == 409 and "no earlier published version" in again.json()["detail"]


def test_a_backfill_from_the_page_is_airflows_own_backfill_of_the_range(published_hour, settings, client):
    label = published_hour["label"]
    body = {"from_hour": label, "to_hour": label, "reprocess": False}
    answer = plugin(settings, "/api/backfills", token_of(client), "POST", json=body)
    assert answer.status_code == 200, answer.text
    created = answer.json()["details"]
    try:
        backfill = client._call("GET", f"/backfills/{created['id']}")
        assert (backfill["dag_id"], backfill["from_date"][:13], backfill["to_date"][:13]) == (DAG_ID, label, label)
        assert backfill["reprocess_behavior"] == "none"  # the hour's successful run is not run again
    finally:
        if not client._call("GET", f"/backfills/{created['id']}").get("completed_at"):
            client._call("PUT", f"/backfills/{created['id']}/cancel")
    reversed_range = {"from_hour": label, "to_hour": hour_label(published_hour["hour"] - HOUR_MS)}
    refused = plugin(settings, "/api/backfills", token_of(client), "POST", json=reversed_range)
    assert refused.status_code == 400 and "is after the end" in refused.json()["detail"]


def test_a_person_recomputes_a_published_hour_from_the_lambda_page(published_hour, settings, client):
    """In Chromium: sign in, open Lambda in Airflow's navigation, find the hour, Recompute, Confirm, read the run id
    the page answers with, and open that run in Airflow, whose "Lambda hour" tab shows the hour. The DAG stays
    paused meanwhile, so the run waits and is deleted afterwards."""
    label = published_hour["label"]
    screenshots = settings.state_dir / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    was_paused = client.is_paused(DAG_ID)
    client._call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})
    run_id = None
    try:
        with chromium_page() as page:
            log_in_to_airflow(page, settings, "/")
            page.get_by_role("link", name="Lambda").click()
            lambda_page = page.frame_locator("iframe")
            lambda_page.get_by_role("link", name="7 days").click()  # the hour is one to six days old
            row = lambda_page.locator(f'tr[data-hour="{label}"]')
            row.wait_for(timeout=60_000)
            assert "batch" in row.inner_text()
            assert lambda_page.get_by_text("twinlayer_recompute is paused").is_visible()
            row.get_by_role("button", name="Recompute").click()
            confirmation = lambda_page.get_by_role("alertdialog")
            assert f"Recompute {label}?" in confirmation.inner_text()
            confirmation.get_by_role("button", name="Confirm").click()
            message = lambda_page.locator("#message")
            message.get_by_text(f"lambda_page__{label}__").wait_for(timeout=30_000)
            page.screenshot(path=str(screenshots / "lambda-page.png"))
            run_id = message.inner_text().split()[1]
            run = client.run(DAG_ID, run_id)
            assert (run["data_interval_start"][:13], run["state"]) == (label, "queued")
            page.goto(f"{settings.url('airflow_port')}/dags/{DAG_ID}/runs/{run_id}", wait_until="networkidle")
            page.get_by_text("Lambda hour", exact=True).click()
            page.frame_locator("iframe").get_by_text(f"Hour {label}").wait_for(timeout=60_000)
            page.screenshot(path=str(screenshots / "lambda-hour-of-a-run.png"))
    finally:  # every run the page started for the hour, even one whose answer the test never read
        runs = client._call("GET", f"/dags/{DAG_ID}/dagRuns", params={"run_id_pattern": f"lambda_page__{label}__"})
        for run in runs["dag_runs"]:
            if run["dag_run_id"].startswith(f"lambda_page__{label}__"):
                client._call("DELETE", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}")
        client._call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": was_paused})
    assert run_id and not client.session.get(f"{client.base}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").ok


def test_sql_and_pandas_over_the_published_hour_equal_brute_force(published_hour, settings, capsys):
    hour, label = published_hour["hour"], published_hour["label"]
    records = [
        r
        for r in truth.read_topic(settings.kafka_bootstrap, settings.events_topic, published_hour["sent_from_ms"])
        if hour <= (truth.event_time_of(r) or 0) < hour + HOUR_MS
    ]  # the fixture sent every event of this hour (no earlier test archived any)
    events = truth.dedupe_first([e for _, e in truth.classify(records).valid])
    expected = {
        (key, start): cell["events"]
        for (view, key, start), cell in truth.view_cells(events).items()
        if view == "campaign_activity_1m"
    }

    def sql(query: str) -> list[dict]:
        capsys.readouterr()
        assert cli_main(["sql", query, "--from", str(hour), "--to", str(hour + HOUR_MS), "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    rows = sql("SELECT key, epoch_ms(window_start) AS start, events, source FROM campaign_activity_1m")
    assert {(r["key"], r["start"]): r["events"] for r in rows} == expected
    assert {r["source"] for r in rows} == {"batch"}
    archived = sql(f"SELECT count(*) AS n FROM archive WHERE event_hour = '{label}'")
    assert archived == [{"n": archive.hour_counts(settings.archive_dir)[label]}]

    per_key: dict[str, list[int]] = {}
    for (key, _), count in expected.items():
        per_key.setdefault(key, []).append(count)
    truth_means = {key: sum(counts) / len(counts) for key, counts in per_key.items()}
    frame = windows("campaign_activity_1m", str(hour), str(hour + HOUR_MS), settings=settings)  # the README's example
    assert frame.groupby("key")["events"].mean().to_dict() == pytest.approx(truth_means)
    means = sql("SELECT key, avg(events) AS mean FROM campaign_activity_1m GROUP BY key ORDER BY mean DESC")
    assert {r["key"]: r["mean"] for r in means} == pytest.approx(truth_means)
