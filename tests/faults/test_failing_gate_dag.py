"""A quality gate that fails inside a real run of the recompute DAG (the stack's Airflow, scheduler and workers):
the run fails at the gate, nothing after it runs, no version is published and serving answers as before."""

import time

import pytest
from pyspark.sql import functions as F

from tests.past_hours import archive_past_events, unused_past_hours
from twinlayer.localstack.airflow_api import AirflowClient
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.model.views import aggregate, by_name
from twinlayer.serving.merge import Server
from twinlayer.storage import hbase as hbase_store
from twinlayer.storage.archive import HOUR_COLUMN
from twinlayer.storage.archive import read as read_archive

pytestmark = pytest.mark.integration


def test_a_failing_gate_in_a_real_dag_run_publishes_nothing_and_serving_is_unchanged(stack, settings, spark):
    hour = unused_past_hours(spark, settings)
    archive_past_events(spark, settings, hour, 2000, seed=61)
    # the speed layer counted twice the events the archive holds, as if the archive had lost half of the hour
    archived = read_archive(spark, settings.archive_dir).where(F.col(HOUR_COLUMN) == hour_label(hour))
    lost = archived.withColumn("event_id", F.concat("event_id", F.lit("-never-archived")))
    mutations = hbase_store.view_mutations(aggregate(archived.unionByName(lost)).collect(), batch_id=1)
    hbase_store.ViewWriter(hbase_store.pool_for(settings, 1), settings.speed_table).write(mutations)

    server = Server(settings)
    view = by_name()["campaign_views_10s"]
    keys = sorted({hbase_store.parse_row_key(m.row)[1] for m in mutations if f"|{view.stored_name}|".encode() in m.row})
    before = {key: server.query(view, key, hour, hour + HOUR_MS).as_dict() for key in keys}
    publications = server.publications()

    run_id = f"failing_gate_{hour_label(hour)}_{int(time.time())}"
    result = AirflowClient.for_stack(settings).run_interval("twinlayer_recompute", hour, hour + HOUR_MS, run_id)

    assert result["state"] == "failed", result["tasks"]
    assert result["tasks"]["hour_closed"] == "success"
    assert result["tasks"]["validate_raw"] == "failed"
    assert {result["tasks"][t] for t in ("recompute", "validate_version", "publish")} == {"upstream_failed"}
    assert server.publications() == publications
    assert {key: server.query(view, key, hour, hour + HOUR_MS).as_dict() for key in keys} == before
    assert all(w["source"] == "speed" for answer in before.values() for w in answer["windows"])
    assert any(answer["windows"] for answer in before.values())
