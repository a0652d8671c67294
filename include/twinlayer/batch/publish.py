"""Publishing batch versions: the pointer of each hour, rollback and the time boundary.

One row of the batch table holds, per hour, the published version and the ones before it; publishing or rolling
back an hour is one check-and-put of the hour's column, which HBase applies atomically, so two runs of an hour
cannot interleave their read and write. Only a version the view gate passed is published. Readers look the version
up there first, so they never see a half-written version. The time boundary is the end of the newest published
hour.

Nothing here deletes the speed cells of a published hour: serving answers it from the batch layer, and the speed
table's TTL (``speed_ttl_seconds``, counted from each cell's window start) retires them. A delete would leave a
marker that masks every later rewrite of those windows (a replay, a rebuild) until a major compaction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from twinlayer.batch.report import push_boundary
from twinlayer.batch.runs import NotGated, gate_passed, gated_definitions, read_run_record, run_record_path
from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS, hour_label, hour_start
from twinlayer.model.views import VIEWS, View, fingerprints
from twinlayer.runtime import faults
from twinlayer.storage import hbase as hbase_store

log = logging.getLogger(__name__)

HISTORY_KEPT = 4


def published(pool, settings: Settings) -> dict[int, dict]:
    """Hour start → {"version", "views", "previous", "previous_views", "published_ms"} for every published hour
    (``views``: view name → fingerprint of the definition the version was computed with)."""
    return {
        hour_start(label): json.loads(entry)
        for label, entry in hbase_store.read_publications(pool, settings.batch_table).items()
    }


def boundary(publications: dict[int, dict]) -> int | None:
    """The time boundary: the end of the newest published hour. Windows before it are served from the batch
    layer where their hour is published; the answer always says which source served each window."""
    return max(publications) + HOUR_MS if publications else None


SWAP_ATTEMPTS = 20


def _change_pointer(pool, settings: Settings, hour_ms: int, decide: Callable[[dict | None], dict]) -> dict:
    """Read the hour's entry, ``decide`` the next one, and put it only if the entry is still the one read (HBase
    check-and-put); read again when another publish or rollback of the hour came first. ``decide`` returning the
    current entry leaves it alone."""
    label = hour_label(hour_ms)
    for _ in range(SWAP_ATTEMPTS):
        raw = hbase_store.read_publication(pool, settings.batch_table, label)
        current = json.loads(raw) if raw else None
        entry = decide(current)
        if entry is current:
            return entry
        faults.point(faults.PUBLISH_DECIDED)
        if hbase_store.swap_publication(pool, settings.batch_table, label, raw, json.dumps(entry).encode()):
            return entry
        log.info("%s: the pointer changed while it was being moved; reading it again", label)
    raise RuntimeError(f"{label}: the pointer kept changing under {SWAP_ATTEMPTS} attempts to move it")


def publish(pool, settings: Settings, hour_ms: int, version: int, views: dict[str, str] | None = None) -> dict:
    """Point the hour at ``version`` computed with the definitions ``views`` (name → fingerprint; by default the
    running code's) atomically; the previous versions stay for rollback. A lower version than the one published is
    older data (a slower run of the same hour) and never replaces it, whatever the order in which two runs get here;
    the same version computed with other definitions (a backfill after a view changed) does."""
    if version <= 0:
        raise ValueError(f"nothing to publish for {hour_label(hour_ms)}: version {version}")
    views = fingerprints(VIEWS) if views is None else views

    def decide(current: dict | None) -> dict:
        if current and current["version"] == version and current.get("views") == views:
            return current
        if current and current["version"] > version and "rolled_back_from" not in current:
            log.warning(
                "%s: version %d is published, not replacing it with the older %d",
                hour_label(hour_ms),
                current["version"],
                version,
            )
            return current
        history = ([current["version"], *current["previous"]] if current else [])[:HISTORY_KEPT]
        history_views = ([current.get("views"), *previous_views(current)] if current else [])[:HISTORY_KEPT]
        return {
            "version": version,
            "views": views,
            "previous": history,
            "previous_views": history_views,
            "published_ms": int(time.time() * 1000),
        }

    return _change_pointer(pool, settings, hour_ms, decide)


def rollback(pool, settings: Settings, hour_ms: int) -> dict:
    """Point the hour back at the version published before the current one."""

    def decide(current: dict | None) -> dict:
        if not current or not current["previous"]:
            raise ValueError(f"{hour_label(hour_ms)} has no earlier published version to roll back to")
        earlier = previous_views(current)
        return {
            "version": current["previous"][0],
            "views": earlier[0],
            "previous": current["previous"][1:],
            "previous_views": earlier[1:],
            "published_ms": int(time.time() * 1000),
            "rolled_back_from": current["version"],
        }

    return _change_pointer(pool, settings, hour_ms, decide)


def previous_views(entry: dict) -> list[dict[str, str] | None]:
    """The definitions of each of the entry's previous versions (None where an entry did not record them)."""
    recorded = entry.get("previous_views", [])
    return [*recorded, *[None] * (len(entry["previous"]) - len(recorded))][: len(entry["previous"])]


def definition_matches(entry: dict, view: View) -> bool:
    """Whether the hour's published version was computed with ``view``'s current definition."""
    return (entry.get("views") or {}).get(view.name) == view.fingerprint


def publish_hour(settings: Settings, hour_ms: int, version: int | None = None) -> dict:
    """Publish ``version`` (by default the run record's), which the view gate must have passed with the definitions
    it is published with: the run record's when it names that version, else those of its latest gate pass."""
    has_record = version is None or run_record_path(settings, hour_ms).exists()
    record = read_run_record(settings, hour_ms) if has_record else {}
    version = record["version"] if version is None else version
    if record.get("version") == version:
        definitions = record.get("views")
    else:
        passed = gated_definitions(settings, hour_ms, version)
        definitions = passed[-1] if passed else None
    if not gate_passed(settings, hour_ms, version, definitions):
        raise NotGated(
            f"{hour_label(hour_ms)}: version {version} with these view definitions has not passed the view gate; "
            "run the hour's recompute (validate_version passes a version before it may be published)"
        )
    pool = hbase_store.pool_for(settings, size=1)
    entry = publish(pool, settings, hour_ms, version, definitions)
    faults.point(faults.PUBLISH_SWAPPED)
    push_boundary(settings, boundary(published(pool, settings)))
    return entry
