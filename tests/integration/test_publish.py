"""Publishing on the real HBase: the hour's pointer moves by check-and-put, so runs of one hour publishing at the
same moment end on the newest version whatever their order, and only a version the view gate passed is published."""

import dataclasses
import threading
import time

import happybase
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from twinlayer.batch import publish as publishing
from twinlayer.batch.runs import NotGated, record_gate_pass
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.model.views import VIEWS, fingerprints
from twinlayer.storage import hbase as hbase_store

pytestmark = pytest.mark.integration

HOUR = 1_790_006_400_000


@pytest.fixture
def local(stack, settings, unique_name, tmp_path):
    local = dataclasses.replace(settings, state_dir=tmp_path / "state", batch_table=unique_name)
    pool = hbase_store.pool_for(local, size=8)
    hbase_store.ensure_batch_table(pool, local.batch_table)
    try:
        yield local, pool
    finally:
        conn = happybase.Connection(settings.host, settings.thrift_port, timeout=20000)
        try:
            conn.delete_table(unique_name, disable=True)
        finally:
            conn.close()


def test_the_pointer_moves_only_from_the_entry_it_was_read_as(local):
    settings, pool = local
    label = hour_label(HOUR)
    assert hbase_store.swap_publication(pool, settings.batch_table, label, None, b"first")
    assert not hbase_store.swap_publication(pool, settings.batch_table, label, None, b"again")
    assert not hbase_store.swap_publication(pool, settings.batch_table, label, b"stale", b"second")
    assert hbase_store.read_publication(pool, settings.batch_table, label) == b"first"
    assert hbase_store.swap_publication(pool, settings.batch_table, label, b"first", b"second")
    assert hbase_store.read_publication(pool, settings.batch_table, label) == b"second"


def test_runs_publishing_one_hour_at_once_end_on_the_newest_version(local):
    """Six runs of each of five hours publish their versions at the same instant, in every order the threads
    happen to take; a read-then-put pointer lets an older version land last."""
    settings, pool = local
    hours = [HOUR + i * HOUR_MS for i in range(5)]
    versions = range(1, 7)
    start = threading.Barrier(len(versions))
    errors: list[BaseException] = []

    def run(version: int) -> None:
        try:
            start.wait()
            for hour in hours:
                publishing.publish(pool, settings, hour, version * 100)
        except BaseException as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    for hour, entry in sorted(publishing.published(pool, settings).items()):
        assert entry["version"] == 600, (hour_label(hour), entry)
        chain = [entry["version"], *entry["previous"]]
        assert chain == sorted(chain, reverse=True) and len(set(chain)) == len(chain), chain


def test_only_a_version_the_view_gate_passed_is_published(local):
    settings, pool = local
    with pytest.raises(NotGated, match="has not passed the view gate"):
        publishing.publish_hour(settings, HOUR, 40)
    assert publishing.published(pool, settings) == {}
    record_gate_pass(settings, HOUR, 40, fingerprints(VIEWS))
    assert publishing.publish_hour(settings, HOUR, 40)["version"] == 40
    with pytest.raises(NotGated):
        publishing.publish_hour(settings, HOUR, 41)
    assert publishing.published(pool, settings)[HOUR]["version"] == 40
    # the same version computed with other definitions (a backfill after a view changed) passes on its own, and
    # is published with the definitions of its latest pass, the old ones kept for rollback
    changed = {**fingerprints(VIEWS), "purchases_by_ad_type_1m": "0123abcd"}
    record_gate_pass(settings, HOUR, 40, changed)
    entry = publishing.publish_hour(settings, HOUR, 40)
    assert (entry["version"], entry["views"]) == (40, changed)
    assert (entry["previous"], entry["previous_views"]) == ([40], [fingerprints(VIEWS)])


def compacted_cells(settings) -> float:
    """Cells the region server has compacted so far (HBase counts a user-requested major compaction of a few small
    files among the minor ones)."""
    text = requests.get(f"http://{settings.host}:{settings.hbase_jmx_port}/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in ("hadoop_hbase_compactedcellscount", "hadoop_hbase_majorcompactedcellscount")
        and s.labels.get("sub") == "Server"
    )


def flush(settings) -> None:
    """Write the table's memstore to a store file: a disable closes its regions, which flushes them."""
    conn = happybase.Connection(settings.host, settings.thrift_port, timeout=60000)
    try:
        conn.disable_table(settings.batch_table)
        conn.enable_table(settings.batch_table)
    finally:
        conn.close()


def major_compact(settings) -> None:
    before = compacted_cells(settings)
    conn = happybase.Connection(settings.host, settings.thrift_port, timeout=60000)
    try:
        conn.compact_table(settings.batch_table, major=True)
    finally:
        conn.close()
    deadline = time.monotonic() + 90
    while compacted_cells(settings) <= before:
        assert time.monotonic() < deadline, "HBase did not report the compaction in 90 s"
        time.sleep(1)


def test_published_versions_outlive_any_number_of_unpublished_ones_and_a_major_compaction(local):
    """Two published versions (the second, and the first as its rollback target), then six runs whose gates failed
    wrote their cells without publishing; HBase compacts the table. Serving reads the published version, and after a
    rollback the one before it."""
    from twinlayer.model.views import by_name
    from twinlayer.serving.merge import Server

    settings, pool = local
    view = by_name()["campaign_views_10s"]
    slot = f"{view.name}__views"

    def write_version(version: int) -> None:
        rows = [
            {"view": view.name, "key": "c1", "window_start_ms": HOUR + w * view.window_ms, slot: version + w}
            for w in range(3)
        ]
        mutations = hbase_store.view_mutations(rows, batch_id=version, views=[view], timestamp=version)
        hbase_store.ViewWriter(pool, settings.batch_table).write(mutations)

    def served() -> list[int]:
        answer = Server(settings).query(view, "c1", HOUR, HOUR + HOUR_MS).as_dict()
        assert {w["source"] for w in answer["windows"]} == {"batch"}, answer
        return [w["views"] for w in answer["windows"]]

    for version in (10, 20):
        write_version(version)
        record_gate_pass(settings, HOUR, version, fingerprints(VIEWS))
        publishing.publish_hour(settings, HOUR, version)
    flush(settings)
    for version in range(30, 90, 10):
        write_version(version)
        if version in (50, 80):
            flush(settings)
    major_compact(settings)  # three store files into one
    assert served() == [20, 21, 22]
    publishing.rollback(pool, settings, HOUR)
    assert served() == [10, 11, 12]
