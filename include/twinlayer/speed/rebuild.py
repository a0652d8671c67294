"""Rebuilding the speed layer's views from Kafka: after their definitions changed, and on request.

The views query keeps its state in a checkpoint named by the fingerprint of the definitions it computes
(``views_checkpoint``). A start that finds none for the running definitions over an archive that has data (the
definitions changed, or the checkpoint was lost) rebuilds: a new views query from the oldest unpublished hour
(``automatic_since``), then live. Checkpoints of other definitions are removed. The ingest query and the archive are
untouched: nothing is archived twice.

``twinlayer speed rebuild --since`` asks the running speed layer for the same from a chosen time through a status
file in its checkpoint folder (``request``): the layer stops its views query, drops its checkpoint and starts it again
from there; the ingest query keeps archiving, and the live views wait behind the rebuilt range. The layer writes its
progress into the file until the views query has committed the end offsets Kafka had when the rebuild began.

A rebuild writes the windows that start at or after its ``since_ms`` (aligned to every view's window) and reads
Kafka from ``MAX_FUTURE_MS`` before it (``read_from_ms``: a valid event is at most that far ahead of its Kafka time),
so every window it writes holds all of its events received since; windows before are not written (they would be
partial). Cells are rewritten in place: a speed cell's timestamp is its window start.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from twinlayer.model.events import MAX_AGE_MS, MAX_FUTURE_MS
from twinlayer.model.hours import HOUR_MS, floor_hour, hour_start
from twinlayer.model.views import View, coarse_window_seconds, views_fingerprint

log = logging.getLogger(__name__)

STATUS_FILE = "views_rebuild.json"
VIEWS_PREFIX = "views"


def views_checkpoint(checkpoint_dir: Path, views: Sequence[View]) -> Path:
    return checkpoint_dir / f"{VIEWS_PREFIX}-{views_fingerprint(views)}"


def retire_other_checkpoints(checkpoint_dir: Path, keep: Path) -> list[Path]:
    """Remove the views checkpoints of other definitions (state no query of the running code can use)."""
    retired = []
    if checkpoint_dir.is_dir():
        for path in checkpoint_dir.iterdir():
            if (
                path.is_dir()
                and path != keep
                and (path.name == VIEWS_PREFIX or path.name.startswith(VIEWS_PREFIX + "-"))
            ):
                shutil.rmtree(path)
                retired.append(path)
    if retired:
        log.warning("views checkpoints of other definitions removed: %s", ", ".join(p.name for p in retired))
    return retired


def automatic_since(archive_hours: Iterable[str], publications: Mapping[int, dict], now_ms: int) -> int:
    """Where a rebuild after a definition change starts: the oldest hour the archive holds that is not published,
    within Kafka's retention (``MAX_AGE_MS``) — serving answers those from the speed layer —, else the end of the
    newest published hour; 0 (every record Kafka holds) when there is neither."""
    oldest_kept = now_ms - MAX_AGE_MS
    unpublished = [
        start for start in map(hour_start, archive_hours) if start not in publications and start + HOUR_MS > oldest_kept
    ]
    if unpublished:
        return max(min(unpublished), floor_hour(oldest_kept))
    return max(publications) + HOUR_MS if publications else 0


def read_from_ms(since_ms: int) -> int:
    """The Kafka time a rebuild whose first window starts at ``since_ms`` reads from: a valid event is at most
    ``MAX_FUTURE_MS`` ahead of its Kafka time, so every event of those windows was received after it."""
    return max(since_ms - MAX_FUTURE_MS, 0) if since_ms > 0 else 0


def aligned(since_ms: int, views: Sequence[View]) -> int:
    """``since_ms`` down to a start of every view's window: no window the rebuild writes is cut by its start."""
    coarse = coarse_window_seconds(views) * 1000
    return since_ms - since_ms % coarse


@dataclasses.dataclass
class Status:
    """One rebuild: ``requested`` by the command, ``running`` once the layer started it, then ``done`` (or
    ``failed``, with the reason). ``since_ms``: the first window start it writes (aligned to the views' windows when
    it starts); it reads Kafka from ``read_from_ms(since_ms)``."""

    state: str
    since_ms: int
    reason: str
    requested_ms: int
    started_ms: int | None = None
    finished_ms: int | None = None
    starting: dict[str, int] = dataclasses.field(default_factory=dict)  # partition -> first offset read
    target: dict[str, int] = dataclasses.field(default_factory=dict)  # partition -> end offset at the start
    records_done: int = 0

    @property
    def records_total(self) -> int:
        return sum(max(self.target[p] - self.starting.get(p, 0), 0) for p in self.target)

    @property
    def seconds(self) -> float | None:
        if self.started_ms is None:
            return None
        return ((self.finished_ms or int(time.time() * 1000)) - self.started_ms) / 1000


def read_status(checkpoint_dir: Path) -> Status | None:
    path = checkpoint_dir / STATUS_FILE
    return Status(**json.loads(path.read_text())) if path.exists() else None


def write_status(checkpoint_dir: Path, status: Status) -> None:
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    partial = checkpoint_dir / f"{STATUS_FILE}.{os.getpid()}.tmp"
    partial.write_text(json.dumps(dataclasses.asdict(status)))
    os.replace(partial, checkpoint_dir / STATUS_FILE)


def request(checkpoint_dir: Path, since_ms: int) -> Status:
    """Ask the speed layer that keeps ``checkpoint_dir`` to rebuild its views from Kafka time ``since_ms``."""
    if not (checkpoint_dir / "ingest").is_dir():
        raise ValueError(f"no speed layer keeps its checkpoints in {checkpoint_dir} (no ingest checkpoint there)")
    current = read_status(checkpoint_dir)
    if current is not None and current.state in ("requested", "running"):
        raise ValueError(
            f"a rebuild from {_iso(current.since_ms)} is {current.state} already; wait for it "
            "(twinlayer speed rebuild --wait-only)"
        )
    status = Status("requested", since_ms, "asked for", int(time.time() * 1000))
    write_status(checkpoint_dir, status)
    return status


PICKUP_SECONDS = 180.0  # a running speed layer takes a request within a second, a starting one after its warm-up


def wait(checkpoint_dir: Path, timeout: float, on_progress=None, poll: float = 1.0) -> Status:
    """Wait for the rebuild in ``checkpoint_dir`` to finish, calling ``on_progress(status)`` on every poll. Raises
    TimeoutError naming how far it got, early when no speed layer takes the request up."""
    deadline = time.monotonic() + timeout
    while True:
        status = read_status(checkpoint_dir)
        if status is None:
            raise ValueError(f"no rebuild was asked for in {checkpoint_dir}")
        if on_progress:
            on_progress(status)
        if status.state == "done":
            return status
        if status.state == "failed":
            raise RuntimeError(f"the views rebuild from {_iso(status.since_ms)} failed: {status.reason}")
        waiting = time.time() - status.requested_ms / 1000
        if status.state == "requested" and waiting > PICKUP_SECONDS:
            raise TimeoutError(
                f"no speed layer has taken up the rebuild asked for {waiting:.0f} s ago in {checkpoint_dir}; is it "
                "running? (twinlayer stack status). It starts the rebuild when it next starts."
            )
        if time.monotonic() > deadline:
            where = f"{status.records_done:,} of {status.records_total:,} records" if status.started_ms else "not begun"
            raise TimeoutError(
                f"the views rebuild from {_iso(status.since_ms)} is {status.state} after {timeout:.0f} s ({where}); "
                "is the speed layer running? (twinlayer stack status)"
            )
        time.sleep(poll)


def committed_offsets(query_checkpoint: Path, topic: str) -> dict[int, int]:
    """Partition → the offset after the records of the last micro-batch the query committed."""
    commits = query_checkpoint / "commits"
    ids = [int(p.name) for p in commits.iterdir() if p.name.isdigit()] if commits.is_dir() else []
    if not ids:
        return {}
    planned = json.loads((query_checkpoint / "offsets" / str(max(ids))).read_text().splitlines()[2])
    return {int(partition): offset for partition, offset in planned[topic].items()}


def update_progress(checkpoint_dir: Path, query_checkpoint: Path, topic: str) -> Status | None:
    """The running rebuild's records done from the views query's commits; ``done`` once it reached its target."""
    status = read_status(checkpoint_dir)
    if status is None or status.state != "running":
        return status
    committed = committed_offsets(query_checkpoint, topic)
    status.records_done = sum(
        max(min(committed.get(int(p), status.starting.get(p, 0)), end) - status.starting.get(p, 0), 0)
        for p, end in status.target.items()
    )
    if all(committed.get(int(p), 0) >= end for p, end in status.target.items() if end > status.starting.get(p, 0)):
        status.state, status.finished_ms = "done", int(time.time() * 1000)
        log.info(
            "views rebuilt from %s: %d records in %.1f s", _iso(status.since_ms), status.records_done, status.seconds
        )
    write_status(checkpoint_dir, status)
    return status


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000)) if ms > 0 else "the oldest record"
