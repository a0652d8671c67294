"""The HBase store of both layers: how views are laid out, the pure function that turns view rows into mutations,
and the only code that talks to HBase (through its Thrift gateway, with happybase).

Row key: ``<salt>|<view@fingerprint>|<key>|<window start ms, 13 digits>`` — the view's ``stored_name``, so a changed
definition writes rows of its own. The salt is two hex digits of a hash of (stored name, key): the windows of one view
and key sit together, so a time range of one key is one contiguous scan, while different keys spread over 16 buckets.
Columns live in family ``m``: one qualifier per measure, plus ``_batch`` (the micro-batch or run that wrote the cell).

Every cell's timestamp is the window start — derived from the data, never the wall clock — so a replayed
micro-batch or a rerun rewrites the same cells: HBase keeps one version per (row, column, timestamp) and the
latest write of it wins. That same timestamp makes the table's TTL an event-time retention.

The batch table also holds the publication row (``~publish``, family ``p``, one column per hour): what the batch
layer publishes and serving reads. Every call goes through ``with_connection``, which retries a pooled connection
the gateway dropped.
"""

from __future__ import annotations

import logging
import numbers
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from twinlayer.model.views import VIEWS, View, by_name, exact_slot_name, slot_name

if TYPE_CHECKING:
    from twinlayer.model.config import Settings

Pool = Any  # happybase.ConnectionPool (happybase has no type information)
Connection = Any  # happybase.Connection
T = TypeVar("T")

log = logging.getLogger(__name__)

FAMILY = b"m"
BATCH_COLUMN = b"m:_batch"
SALT_BUCKETS = 16
TS_DIGITS = 13
PUBLISH_ROW = b"~publish"
JUMP_AFTER = 1000  # rows of one key outside a listed range before its scan jumps (see ``view_keys``)
PUBLISH_FAMILY = "p"


class Mutation(NamedTuple):
    row: bytes
    columns: dict[bytes, bytes]
    timestamp: int


class WindowValue(NamedTuple):
    window_start_ms: int
    window_end_ms: int
    measures: dict[str, Any]  # ints, floats, and HLL sketches as bytes
    batch: int | None


def salt(view: str, key: str) -> str:
    return f"{zlib.crc32(f'{view}|{key}'.encode()) % SALT_BUCKETS:02x}"


def row_prefix(view: str, key: str) -> bytes:
    return f"{salt(view, key)}|{view}|{key}|".encode()


def window_bound(view: str, key: str, window_start_ms: int) -> bytes:
    """A scan bound: the row of ``view``/``key`` at ``window_start_ms``, clamped to the row-key range."""
    return row_prefix(view, key) + f"{min(max(window_start_ms, 0), 10**TS_DIGITS - 1):0{TS_DIGITS}d}".encode()


def row_key(view: str, key: str, window_start_ms: int) -> bytes:
    if not 0 <= window_start_ms < 10**TS_DIGITS:
        raise ValueError(f"window start {window_start_ms} is outside the row-key range")
    return row_prefix(view, key) + f"{window_start_ms:0{TS_DIGITS}d}".encode()


def parse_row_key(row: bytes) -> tuple[str, str, int]:
    text = row.decode()
    view, rest = text[3:].split("|", 1)
    return view, rest[: -(TS_DIGITS + 1)], int(rest[-TS_DIGITS:])


def encode_value(value: object) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy integers too
        return str(int(value)).encode()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return repr(float(value)).encode()
    raise TypeError(f"cannot store {value!r} as a measure")


def decode_value(raw: bytes, kind: str) -> object:
    if kind == "distinct":
        return raw
    text = raw.decode()
    return float(text) if any(c in text for c in ".eEn") else int(text)


def view_mutations(
    rows: Iterable[Any],  # mappings or Spark Rows, read by column name
    batch_id: int,
    views: Sequence[View] = VIEWS,
    exact: bool = False,
    timestamp: int | None = None,
) -> list[Mutation]:
    """Rows of ``views.aggregate`` (mappings or Spark Rows) for one micro-batch or run → HBase mutations.

    Pure and deterministic: the same rows in any order give the same list, sorted by row key. Measures that are
    null (min/max of an empty group) are left out rather than written. Cells carry the window start as timestamp
    (speed layer) unless ``timestamp`` is given (the batch layer's version).
    """
    catalog = by_name(views)
    mutations = []
    for row in rows:
        record = row.asDict() if hasattr(row, "asDict") else row
        view = catalog[record["view"]]
        columns = {BATCH_COLUMN: str(batch_id).encode()}
        for measure in view.measures:
            value = record[slot_name(view, measure)]
            if value is not None:
                columns[f"m:{measure.name}".encode()] = encode_value(value)
            if exact and measure.kind == "distinct":
                columns[f"m:{measure.name}.exact".encode()] = encode_value(record[exact_slot_name(view, measure)])
        start = int(record["window_start_ms"])
        mutations.append(
            Mutation(
                row_key(view.stored_name, record["key"], start), columns, start if timestamp is None else timestamp
            )
        )
    mutations.sort(key=lambda m: m.row)
    return mutations


def decode_row(view: View, row: bytes, data: Mapping[bytes, bytes]) -> WindowValue:
    _, _, start = parse_row_key(row)
    measures: dict[str, object] = {}
    for measure in view.measures:
        raw = data.get(f"m:{measure.name}".encode())
        if raw is not None:
            measures[measure.name] = decode_value(raw, measure.kind)
        exact = data.get(f"m:{measure.name}.exact".encode())
        if exact is not None:
            measures[f"{measure.name}.exact"] = int(exact)
    batch = data.get(BATCH_COLUMN)
    return WindowValue(start, start + view.window_ms, measures, int(batch) if batch is not None else None)


def sketch_estimate(sketch: bytes) -> float:
    """Estimated distinct count of an HLL sketch written by Spark's ``hll_sketch_agg``."""
    from datasketches import hll_sketch

    return float(hll_sketch.deserialize(sketch).get_estimate())


# --- I/O ---------------------------------------------------------------------------------------------------------


class HBaseUnavailable(RuntimeError):
    """HBase (its Thrift gateway) did not answer within the retry budget."""


def with_connection(pool: Pool, action: Callable[[Connection], T], attempts: int = 3) -> T:
    """``action(connection)`` with a pooled connection, retried on a fresh one when the Thrift server has closed
    the pooled socket (it drops idle connections); happybase replaces a connection that raised."""
    from thriftpy2.thrift import TException

    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            with pool.connection() as conn:
                return action(conn)
        except (TException, OSError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def connection_pool(host: str, port: int, size: int = 2) -> Pool:
    import happybase

    return happybase.ConnectionPool(size, host=host, port=port, timeout=30000, autoconnect=True)


def pool_for(settings: Settings, size: int = 2) -> Pool:
    """A pool to the Thrift gateway that ``settings`` (a ``model.config.Settings``) names."""
    return connection_pool(settings.host_of("thrift_port"), settings.thrift_port, size=size)


def ping(pool: Pool) -> None:
    """Raises unless HBase answers a table listing."""
    with_connection(pool, lambda conn: conn.tables(), attempts=1)


def check_gateway(host: str, port: int, timeout_ms: int = 5000) -> None:
    """A fresh connection lists the tables, or raises: the health probe of HBase behind its Thrift gateway."""
    import happybase

    connection = happybase.Connection(host, port, timeout=timeout_ms, autoconnect=False)
    try:
        connection.open()
        connection.tables()
    finally:
        connection.close()


def ensure_table(
    pool: Pool,
    name: str,
    max_versions: int = 1,
    ttl_seconds: int | None = None,
    extra_families: Mapping[str, dict[str, object]] | None = None,
) -> None:
    family: dict[str, object] = {"max_versions": max_versions}
    if ttl_seconds:
        family["time_to_live"] = ttl_seconds

    def create(conn: Connection) -> None:
        if name.encode() in conn.tables():
            return
        try:
            conn.create_table(name, {FAMILY.decode(): family, **(extra_families or {})})
        except Exception as exc:  # created concurrently by another process is fine
            if name.encode() not in conn.tables():
                raise HBaseUnavailable(f"could not create HBase table {name}: {exc}") from exc

    with_connection(pool, create)


ALL_VERSIONS = 2**31 - 1  # HBase's largest VERSIONS: no version is dropped by count, at a read or a compaction


def ensure_batch_table(pool: Pool, name: str) -> None:
    """The batch table: every version of every cell kept (a published version must outlive the unpublished ones
    written after it), and the publication family."""
    ensure_table(pool, name, max_versions=ALL_VERSIONS, extra_families={PUBLISH_FAMILY: {"max_versions": 1}})
    kept = with_connection(pool, lambda conn: conn.table(name).families()[FAMILY]["max_versions"])
    if kept < ALL_VERSIONS:
        log.warning(
            "HBase table %s keeps %d versions of a batch cell: a published version can be dropped once %d newer "
            "ones are written. Recreate the table (the batch layer rewrites every hour) to keep all.",
            name,
            kept,
            kept,
        )


class ViewWriter:
    """Writes mutations through Thrift, retrying a dead gateway with backoff for up to ``retry_seconds``."""

    def __init__(
        self,
        pool: Pool,
        table: str,
        retry_seconds: float = 180.0,
        on_attempt: Callable[[float, Exception | None], None] | None = None,
    ) -> None:
        self.pool = pool
        self.table = table
        self.retry_seconds = retry_seconds
        self.on_attempt = on_attempt or (lambda seconds, error: None)

    def write(self, mutations: Sequence[Mutation]) -> None:
        if not mutations:
            return
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                self._write_once(mutations)
            except Exception as exc:  # Thrift and socket errors alike; the batch is replayed whole
                self.on_attempt(time.monotonic() - started, exc)
                if time.monotonic() + delay > deadline:
                    raise HBaseUnavailable(
                        f"HBase write to {self.table} failed for {self.retry_seconds:.0f}s: {type(exc).__name__}: {exc}"
                    ) from exc
                log.warning("HBase write failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                self.on_attempt(time.monotonic() - started, None)
                return

    def _write_once(self, mutations: Sequence[Mutation]) -> None:
        by_timestamp: dict[int, list[Mutation]] = {}
        for mutation in mutations:
            by_timestamp.setdefault(mutation.timestamp, []).append(mutation)
        with self.pool.connection() as conn:
            table = conn.table(self.table)
            for timestamp, group in by_timestamp.items():
                with table.batch(timestamp=timestamp, batch_size=2000) as batch:
                    for mutation in group:
                        batch.put(mutation.row, mutation.columns)


def read_view(
    pool: Pool, table: str, view: View, key: str, from_ms: int, to_ms: int, version: int | None = None
) -> list[WindowValue]:
    """Windows of ``view`` for ``key`` whose start lies in [from_ms, to_ms), oldest first; with ``version``, the
    cells written at that version (or the newest before it)."""
    start, stop = window_bound(view.stored_name, key, from_ms), window_bound(view.stored_name, key, to_ms)
    kwargs: dict[str, int] = {} if version is None else {"timestamp": version + 1}
    return with_connection(
        pool,
        lambda conn: [
            decode_row(view, row, data)
            for row, data in conn.table(table).scan(row_start=start, row_stop=stop, **kwargs)
        ],
    )


def view_keys(pool: Pool, table: str, view: str, from_ms: int, to_ms: int) -> dict[str, int]:
    """Each key of ``view`` (a ``stored_name``) with the number of its windows that start in [from_ms, to_ms): row
    keys only, from every salt bucket. A key's rows sort by window start: after ``JUMP_AFTER`` rows in a row outside
    the range, the scan jumps to ``from_ms`` inside the key or past the key, so a table with days of history is not
    read whole."""
    key_only = b"KeyOnlyFilter() AND FirstKeyOnlyFilter()"

    def scan(conn: Connection) -> dict[str, int]:
        found: Counter[str] = Counter()
        if table.encode() not in conn.tables():  # no batch run has written one yet
            return {}
        handle = conn.table(table)
        for bucket in range(SALT_BUCKETS):
            prefix = f"{bucket:02x}|{view}|".encode()
            start: bytes | None = prefix
            while start is not None:
                rows = handle.scan(row_start=start, row_stop=prefix + b"\xff", filter=key_only, batch_size=1000)
                start, outside = None, 0
                for row, _ in rows:
                    _, key, window_start = parse_row_key(row)
                    if from_ms <= window_start < to_ms:
                        found[key] += 1
                        outside = 0
                        continue
                    outside += 1
                    if outside >= JUMP_AFTER:
                        early = window_start < from_ms
                        start = window_bound(view, key, from_ms) if early else row_prefix(view, key) + b"~"
                        break
                rows.close()  # the Thrift scanner, when the loop left early
        return dict(found)

    return with_connection(pool, scan)


# --- the publication row of the batch table ------------------------------------------------------------------------


def read_publications(pool: Pool, table: str) -> dict[str, bytes]:
    """Hour label → the raw publication entry of that hour (empty while the table does not exist)."""

    def read(conn: Connection) -> dict[str, bytes]:
        if table.encode() not in conn.tables():
            return {}
        row = conn.table(table).row(PUBLISH_ROW, columns=[PUBLISH_FAMILY.encode()])
        return {column.decode().split(":", 1)[1]: value for column, value in row.items()}

    return with_connection(pool, read)


def read_publication(pool: Pool, table: str, hour_label: str) -> bytes | None:
    """The raw publication entry of one hour, None when the hour was never published."""
    column = f"{PUBLISH_FAMILY}:{hour_label}".encode()

    def read(conn: Connection) -> bytes | None:
        value: bytes | None = conn.table(table).row(PUBLISH_ROW, columns=[column]).get(column)
        return value

    return with_connection(pool, read)


def swap_publication(pool: Pool, table: str, hour_label: str, expected: bytes | None, entry: bytes) -> bool:
    """Put one hour's entry only if it still reads ``expected`` (None: the hour has no entry yet); HBase checks and
    puts atomically (Thrift ``checkAndPut``). False when another writer changed it first."""
    from Hbase_thrift import Mutation as ThriftMutation  # registered by happybase when it loads its Thrift IDL

    column = f"{PUBLISH_FAMILY}:{hour_label}".encode()

    def swap(conn: Connection) -> bool:
        put = ThriftMutation(column=column, value=entry)
        return bool(conn.client.checkAndPut(conn.table(table).name, PUBLISH_ROW, column, expected, put, {}))

    return with_connection(pool, swap)
