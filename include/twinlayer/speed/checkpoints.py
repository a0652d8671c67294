"""Where the speed layer may start from, and when it must refuse to start at all.

Each query keeps a Spark checkpoint; the archive keeps its own commit records, per epoch. The two must agree: the
ingest query's batch ids name archive commits, so an ingest checkpoint that lost batches the archive committed would
make Spark number new batches like old ones, and the archive would skip them as already written — records lost
without a sound. So a start is refused when the checkpoints are gone over an existing archive (all of them, or the
ingest query's alone) unless ``--reset-checkpoints`` opens a new epoch after the last archived Kafka offsets. The
views query's checkpoint alone may go: the views then rebuild from Kafka, rewriting the same cells.

A start records its epoch and Kafka starting offsets in ``archive_epoch`` before any query runs, so a reset start
that dies before its first commit starts again where the reset said, not from Kafka's oldest record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import SparkSession

from twinlayer.storage import archive, kafka

log = logging.getLogger(__name__)

MARKER = "archive_epoch"
INGEST = "ingest"

# Spark's conditions for a checkpoint whose state another shape of query wrote (a view, a measure, the dedupe or the
# shuffle width changed since)
INCOMPATIBLE_STATE = (
    "STREAMING_STATEFUL_OPERATOR_NOT_MATCH_IN_STATE_METADATA",
    "STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE",
    "STATE_STORE_VALUE_SCHEMA_NOT_COMPATIBLE",
    "STATE_STORE_KEY_ROW_FORMAT_VALIDATION_FAILURE",
    "STATE_STORE_VALUE_ROW_FORMAT_VALIDATION_FAILURE",
    "STREAMING_STATEFUL_OPERATOR_MISSING_STATE_DIRECTORY",
)


def incompatible_state(error: BaseException | str | None, checkpoint: Path) -> str | None:
    """What to tell the operator when ``error`` says a query's checkpoint holds state of another shape, else None."""
    text = str(error or "")
    condition = next((name for name in INCOMPATIBLE_STATE if name in text), None)
    if condition is None:
        return None
    query = checkpoint.name
    return (
        f"the {query} query cannot continue from its checkpoint {checkpoint}: Spark says {condition}, the state "
        "there was written by another shape of the query (its dedupe, watermark or shuffle width; a change of the "
        "view definitions gets a checkpoint of its own). The archive, its checkpoint and the dead letters are not "
        "affected. Either run the code that wrote that checkpoint, or move the folder aside (or run twinlayer speed "
        "rebuild): the views are then rebuilt from Kafka from the oldest unpublished hour, rewriting the same cells."
    )


class CheckpointMissing(RuntimeError):
    """The archive exists but the speed layer's checkpoints (or the ingest query's) do not: refusing to guess."""


def last_spark_commit(query_checkpoint: Path) -> int | None:
    """The last micro-batch Spark committed in a query's checkpoint, None when it has none (or is gone)."""
    commits = query_checkpoint / "commits"
    ids = [int(p.name) for p in commits.iterdir() if p.name.isdigit()] if commits.is_dir() else []
    return max(ids, default=None)


def ingest_checkpoint_problem(ingest_checkpoint: Path, epoch: Path) -> str | None:
    """Why the ingest query cannot continue from its checkpoint into ``epoch``, or None. The archive commits a
    batch just before Spark does, so Spark may be one batch behind the archive, never more."""
    archived = archive.last_batch_id(epoch)
    if archived is None:
        return None
    spark_last = last_spark_commit(ingest_checkpoint)
    if spark_last is not None and spark_last >= archived - 1:
        return None
    found = "is gone" if spark_last is None else f"ends at micro-batch {spark_last}"
    return (
        f"the ingest query's checkpoint {ingest_checkpoint} {found}, while the archive epoch {epoch} has committed "
        f"micro-batch {archived}: continuing would number new micro-batches like archived ones, which the archive "
        "skips as written, and lose their records. Restore the checkpoint, or start with --reset-checkpoints to "
        "open a new archive epoch that continues after the last archived Kafka offsets."
    )


@dataclasses.dataclass(frozen=True)
class StartPlan:
    """Where this start writes and reads: the archive epoch, and each query's Kafka starting offsets (Spark uses them
    only for a query without a checkpoint)."""

    epoch: Path
    ingest_starting: str
    views_starting: str
    archived: bool = False  # the epoch has committed micro-batches: a views query without a checkpoint rebuilds


def plan_start(
    spark: SparkSession, checkpoint_dir: Path, archive_dir: Path, topic: str, reset: bool, bootstrap: str
) -> StartPlan:
    """Raises CheckpointMissing when a start is unsafe. The epoch's starting offsets serve the ingest query, and the
    views query until the epoch's first commit; a views query without a checkpoint after that rebuilds
    (``rebuild``; retention may have dropped the epoch's first offsets)."""
    marker = checkpoint_dir / MARKER
    if marker.exists():
        epoch, starting = _read_marker(marker)
        problem = ingest_checkpoint_problem(checkpoint_dir / INGEST, epoch)
        if problem is None:
            archived = archive.last_batch_id(epoch) is not None
            return StartPlan(epoch, starting, "earliest" if archived else starting, archived)
        if not reset:
            raise CheckpointMissing(problem)
        log.warning("%s — resetting, as asked", problem)
    epochs = archive.epochs(archive_dir)
    if epochs and not reset:
        raise CheckpointMissing(
            f"the archive {archive_dir} has data but the checkpoints in {checkpoint_dir} are gone. "
            "Restore them, or start with --reset-checkpoints to open a new archive epoch that continues after the "
            "last archived Kafka offsets (speed views of the windows open at that moment will be partial until the "
            "batch layer recomputes them)."
        )
    if checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True)
    starting = "earliest"
    if epochs:
        starting = reset_offsets(topic, archive.last_offsets(spark, archive_dir), kafka.end_offsets(bootstrap, topic))
        log.warning("reset: new archive epoch, Kafka offsets start at %s", starting)
    epoch = archive.open_epoch(archive_dir, len(epochs) + 1)
    marker.write_text(json.dumps({"epoch": str(epoch), "starting": starting}))
    return StartPlan(epoch, starting, starting)


def reset_offsets(topic: str, last_archived: dict[int, int], partitions: Iterable[int]) -> str:
    """Spark's ``startingOffsets`` after the last archived offsets: Spark wants every partition of the topic named,
    so a partition the archive holds nothing of starts at its earliest record (-2)."""
    if not last_archived:
        return "earliest"
    every = sorted(set(partitions) | set(last_archived))
    return json.dumps({topic: {str(p): last_archived[p] + 1 if p in last_archived else -2 for p in every}})


def _read_marker(marker: Path) -> tuple[Path, str]:
    text = marker.read_text().strip()
    if not text.startswith("{"):  # written before markers named the starting offsets
        return Path(text), "earliest"
    recorded = json.loads(text)
    return Path(recorded["epoch"]), recorded["starting"]
