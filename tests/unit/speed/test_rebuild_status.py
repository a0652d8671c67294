"""The views rebuild's bookkeeping on files, as the running speed layer and the command share it: where a rebuild
starts, how its progress is read from the views query's commits, when it is done, and which checkpoints of other
definitions go. Pure logic on a temporary folder."""

import json

import pytest

from twinlayer.model.events import MAX_FUTURE_MS
from twinlayer.model.views import DEFAULT_VIEWS
from twinlayer.speed import rebuild


def commit(query_checkpoint, batch_id, offsets, topic="events"):
    (query_checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (query_checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    planned = {topic: {str(p): o for p, o in offsets.items()}}
    (query_checkpoint / "offsets" / str(batch_id)).write_text(f"v1\n{{}}\n{json.dumps(planned)}\n")
    (query_checkpoint / "commits" / str(batch_id)).write_text("v1\n{}\n")


def test_a_rebuild_reads_from_the_oldest_unpublished_hour_less_how_far_ahead_an_event_may_be():
    assert rebuild.rebuild_start_ms(None) == 0  # nothing published: every record Kafka holds
    assert rebuild.rebuild_start_ms(7_200_000) == 7_200_000 - MAX_FUTURE_MS


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
