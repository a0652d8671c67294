"""Gate passes and snapshots are kept per version *and* definitions: pure bookkeeping over files, no services."""

import json

import pytest

from twinlayer.batch.recompute import snapshot_path
from twinlayer.batch.runs import gate_passed, gate_passes, gated_definitions, record_gate_pass
from twinlayer.model.config import load_settings
from twinlayer.model.hours import hour_label
from twinlayer.model.views import definitions_key

HOUR = 1_790_006_400_000
OLD = {"campaign_views_10s": "aaaa0001", "campaign_activity_1m": "bbbb0001"}
NEW = {"campaign_views_10s": "aaaa0002", "campaign_activity_1m": "bbbb0001", "purchases_1m": "cccc0001"}


@pytest.fixture
def settings(tmp_path):
    return load_settings({"TWINLAYER_STATE_DIR": str(tmp_path)})


def test_a_pass_of_one_definition_does_not_pass_the_same_version_of_another(settings):
    record_gate_pass(settings, HOUR, 40, OLD)
    assert gate_passed(settings, HOUR, 40, OLD)
    assert not gate_passed(settings, HOUR, 40, NEW)
    assert not gate_passed(settings, HOUR, 41, OLD)
    record_gate_pass(settings, HOUR, 40, NEW)
    assert gate_passed(settings, HOUR, 40, NEW) and gate_passed(settings, HOUR, 40, OLD)


def test_passes_keep_their_order_and_a_repeated_pass_moves_last(settings):
    record_gate_pass(settings, HOUR, 40, OLD)
    record_gate_pass(settings, HOUR, 40, NEW)
    record_gate_pass(settings, HOUR, 50, NEW)
    assert gated_definitions(settings, HOUR, 40) == [OLD, NEW]
    record_gate_pass(settings, HOUR, 40, OLD)
    assert gated_definitions(settings, HOUR, 40) == [NEW, OLD]
    assert [p["version"] for p in gate_passes(settings, HOUR)] == [40, 50, 40]


def test_passes_noted_before_definitions_were_recorded_are_read_as_unknown_definitions(settings):
    path = settings.batch_dir / "gated" / f"{hour_label(HOUR)}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps([30, 40]))
    assert gate_passes(settings, HOUR) == [{"version": 30, "views": None}, {"version": 40, "views": None}]
    assert not gate_passed(settings, HOUR, 40, OLD)
    record_gate_pass(settings, HOUR, 40, OLD)
    assert gated_definitions(settings, HOUR, 40) == [None, OLD]


def test_the_same_version_of_other_definitions_has_a_snapshot_of_its_own(settings):
    assert snapshot_path(settings, HOUR, 40, OLD) != snapshot_path(settings, HOUR, 40, NEW)
    assert snapshot_path(settings, HOUR, 40, OLD).parent == snapshot_path(settings, HOUR, 40, NEW).parent
    assert definitions_key(dict(reversed(list(NEW.items())))) == definitions_key(NEW)  # order does not matter
