"""A checkpoint holding state of another shape is told apart from other failures, with what to do about it: the
speed layer exits for a person instead of restarting into the same refusal; a reset names every partition of the
topic. Pure logic, no Spark."""

import json
from pathlib import Path

from twinlayer.speed.checkpoints import incompatible_state, reset_offsets


def test_state_of_another_shape_gets_advice_naming_the_checkpoint():
    error = (
        "[STREAMING_STATEFUL_OPERATOR_NOT_MATCH_IN_STATE_METADATA] Streaming stateful operator name does not match "
        "with the operator in state metadata."
    )
    advice = incompatible_state(error, Path("/state/checkpoints/speed/views"))
    assert advice is not None
    assert "/state/checkpoints/speed/views" in advice and "STREAMING_STATEFUL_OPERATOR_NOT_MATCH" in advice
    assert "move the folder aside" in advice


def test_other_failures_are_not_mistaken_for_it():
    assert incompatible_state("[KAFKA_DATA_LOSS] Some data may have been lost", Path("/cp/views")) is None
    assert incompatible_state(None, Path("/cp/views")) is None


def test_reset_names_every_partition_and_starts_unarchived_ones_at_their_earliest_record():
    starting = json.loads(reset_offsets("events", {0: 41, 2: 9}, [0, 1, 2, 3]))
    assert starting == {"events": {"0": 42, "1": -2, "2": 10, "3": -2}}


def test_reset_over_an_archive_without_offsets_starts_at_the_earliest_records():
    assert reset_offsets("events", {}, [0, 1]) == "earliest"
