"""The recompute of an hour killed with SIGKILL mid-write and mid-publish, at the test-only crash points of
``twinlayer.runtime.faults``, on the real stack: nothing is published half-written, serving keeps answering what it
answered, and the next run publishes the exact hour (equal to the brute-force truth).
"""

import dataclasses
import subprocess
import sys
import time

import happybase
import pytest

from tests import truth
from tests.batch_jobs import env_for, spark_submit_recompute
from tests.past_hours import archive_past_events, unused_past_hours
from twinlayer.batch import gates
from twinlayer.batch import publish as publishing
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.model.views import by_name
from twinlayer.runtime import faults
from twinlayer.serving.merge import Server

pytestmark = pytest.mark.integration

VIEW = "campaign_views_10s"


@pytest.fixture
def local(stack, settings, unique_name):
    """The stack's archive and speed table, a batch table of the test's own."""
    local = dataclasses.replace(settings, batch_table=unique_name)
    try:
        yield local
    finally:
        conn = happybase.Connection(settings.host, settings.thrift_port, timeout=20000)
        try:
            if unique_name.encode() in conn.tables():
                conn.delete_table(unique_name, disable=True)
        finally:
            conn.close()


def cells_of_version(settings, version: int) -> int:
    conn = happybase.Connection(settings.host, settings.thrift_port, timeout=60000)
    try:
        return sum(1 for _ in conn.table(settings.batch_table).scan(columns=[b"m"], timestamp=version + 1))
    finally:
        conn.close()


def publish_in_a_process(settings, hour: int, fault: str) -> subprocess.CompletedProcess:
    code = (
        "from twinlayer.batch.publish import publish_hour; from twinlayer.model.config import load_settings; "
        f"publish_hour(load_settings(), {hour})"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**env_for(settings), faults.FAULT: fault},
        capture_output=True,
        text=True,
        timeout=120,
    )


def answers(server: Server, hour: int, keys) -> dict:
    view = by_name()[VIEW]
    return {key: server.query(view, key, hour, hour + HOUR_MS).as_dict()["windows"] for key in keys}


def test_a_recompute_killed_mid_write_and_mid_publish_publishes_nothing_half_done(
    local, settings, spark, fault_figures
):
    hour = unused_past_hours(spark, settings)
    archive_past_events(spark, settings, hour, 6000, seed=53)
    records = [
        r
        for r in truth.read_topic(settings.kafka_bootstrap, settings.events_topic)
        if hour <= (truth.event_time_of(r) or 0) < hour + HOUR_MS
    ]
    expected = {
        (k, s): c["views"]
        for (v, k, s), c in truth.view_cells(truth.first_received(truth.classify(records).valid)).items()
        if v == VIEW
    }
    keys = sorted({k for k, _ in expected})
    server = Server(local)
    before = answers(server, hour, keys)

    raw_facts = gates.gate_raw(local, hour).facts
    killed = spark_submit_recompute(local, hour, hour + HOUR_MS, env={faults.FAULT: faults.BATCH_WRITING}, check=False)
    assert killed.returncode != 0, killed.stdout[-2000:]
    version = raw_facts["raw_rows"]
    partial = cells_of_version(local, version)
    assert partial > 0, "the crash came after part of the version was written"
    assert hour_label(hour) not in server.publications()
    assert answers(server, hour, keys) == before  # the half-written version is invisible

    spark_submit_recompute(local, hour, hour + HOUR_MS)  # the task's retry
    assert cells_of_version(local, version) > partial
    assert gates.gate_version(local, hour, raw_facts).facts["version"] == version

    for fault in (faults.PUBLISH_DECIDED, faults.PUBLISH_SWAPPED):
        died = publish_in_a_process(local, hour, fault)
        assert died.returncode == -9, died.stderr[-2000:]
        entry = server.publications().get(hour_label(hour))
        if fault == faults.PUBLISH_DECIDED:
            assert entry is None and answers(server, hour, keys) == before
        else:
            assert entry is not None and entry["version"] == version  # the swap is one check-and-put
    again = publishing.publish_hour(local, hour)  # the task's retry: the same entry, no second history entry
    assert again == server.publications()[hour_label(hour)]
    assert again["version"] == version and again["previous"] == []

    time.sleep(local.serving_publications_max_age_seconds)  # how long a pointer's move takes to reach answers
    served = answers(server, hour, keys)
    assert {(k, w["window_start_ms"]): w["views"] for k, ws in served.items() for w in ws} == expected
    assert {w["source"] for ws in served.values() for w in ws} == {"batch"}
    fault_figures("recompute killed mid-write, publish killed twice", cells_before_kill=partial)
