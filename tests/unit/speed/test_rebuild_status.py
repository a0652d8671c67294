"""The views rebuild's bookkeeping on files, as the running speed layer and the command share it: where a rebuild
starts, how its progress is read from the views query's commits, when it is done, and which checkpoints of other
definitions go. Pure logic on a temporary folder."""

import json

import pytest

from twinlayer.model.events import MAX_AGE_MS, MAX_FUTURE_MS
from twinlayer.model.hours import HOUR_MS, hour_label
from twinlayer.model.views import DEFAULT_VIEWS
from twinlayer.speed import rebuild


def commit(query_checkpoint, batch_id, offsets, topic="events"):
    (query_checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (query_checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    planned = {topic: {str(p): o for p, o in offsets.items()}}
    (query_checkpoint / "offsets" / str(batch_id)).write_text(f"v1\n{{}}\n{json.dumps(planned)}\n")
    (query_checkpoint / "commits" / str(batch_id)).write_text("v1\n{}\n")


def test_a_rebuild_starts_at_the_oldest_unpublished_hour_kafka_still_holds():
    now = 1_800_000_000_000 // HOUR_MS * HOUR_MS + 600_000
    hours = [now // HOUR_MS * HOUR_MS - h * HOUR_MS for h in (0, 1, 2, 3, 200)]  # 200 h ago: past Kafka's week
    published = {hours[2]: {}, hours[3]: {}}
    assert rebuild.automatic_since(map(hour_label, hours), published, now) == hours[1]  # a gap before the newest
    assert rebuild.automatic_since(map(hour_label, hours[2:4]), published, now) == hours[2] + HOUR_MS  # the boundary
    assert rebuild.automatic_since([], {}, now) == 0  # nothing archived or published: every record Kafka holds
    assert rebuild.automatic_since([hour_label(hours[4])], {}, now) == 0  # an hour Kafka no longer holds
    week_ago = now - MAX_AGE_MS + HOUR_MS // 2  # inside Kafka's week, its hour started before it
    assert rebuild.automatic_since([hour_label(week_ago)], {}, now) == (now - MAX_AGE_MS) // HOUR_MS * HOUR_MS


def test_a_rebuild_writes_whole_windows_from_records_it_reads_early_enough():
    assert rebuild.read_from_ms(0) == 0
    assert rebuild.read_from_ms(7_200_000) == 7_200_000 - MAX_FUTURE_MS
    assert rebuild.aligned(7_265_000, DEFAULT_VIEWS) == 7_260_000  # the views' windows: 10 s and 1 min


def test_progress_comes_from_the_views_commits_until_the_target_is_reached(tmp_path):
    (tmp_path / "ingest").mkdir()
    views = rebuild.views_checkpoint(tmp_path, DEFAULT_VIEWS)
    status = rebuild.request(tmp_path, 1000)
    with pytest.raises(ValueError, match="requested already"):
        rebuild.request(tmp_path, 2000)
    status.state, status.started_ms = "running", 1
    status.starting, status.target = {"0": 100, "1": 50, "2": 7}, {"0": 300, "1": 150, "2": 7}
    rebuild.write_status(tmp_path, status)
    assert rebuild.update_progress(tmp_path, views, "events").records_done == 0  # nothing committed yet
    commit(views, 0, {0: 200, 1: 50, 2: 7})
    assert (rebuild.update_progress(tmp_path, views, "events").records_done, status.records_total) == (100, 300)
    commit(views, 1, {0: 310, 1: 150, 2: 7})  # past the target: live records after it
    done = rebuild.update_progress(tmp_path, views, "events")
    assert done.state == "done" and done.records_done == 300 and done.finished_ms
    assert rebuild.wait(tmp_path, 1).state == "done"
    assert rebuild.request(tmp_path, 3000).state == "requested"  # a finished rebuild does not block the next


def test_a_rebuild_needs_a_speed_layer_folder(tmp_path):
    with pytest.raises(ValueError, match="no speed layer"):
        rebuild.request(tmp_path, 1000)


def test_checkpoints_of_other_definitions_are_removed(tmp_path):
    keep = rebuild.views_checkpoint(tmp_path, DEFAULT_VIEWS)
    for name in ("views", "views-0badcafe", keep.name, "ingest"):
        (tmp_path / name).mkdir()
    retired = rebuild.retire_other_checkpoints(tmp_path, keep)
    assert {p.name for p in retired} == {"views", "views-0badcafe"}
    assert {p.name for p in tmp_path.iterdir()} == {keep.name, "ingest"}
