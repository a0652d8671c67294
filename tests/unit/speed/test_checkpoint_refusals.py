"""A checkpoint holding state of another shape is told apart from other failures, with what to do about it: the
speed layer exits for a person instead of restarting into the same refusal. Pure logic, no Spark."""

from pathlib import Path

from twinlayer.speed.checkpoints import incompatible_state


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
