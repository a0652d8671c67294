"""HBase standalone through the Thrift1 gateway with happybase: tables, explicit timestamps, versions, scans."""

import happybase
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def connection(stack, settings):
    conn = happybase.Connection(settings.host, settings.thrift_port, timeout=20000)
    try:
        yield conn
    finally:
        conn.close()


def test_put_get_scan_with_explicit_timestamps(connection, unique_name):
    connection.create_table(unique_name, {"v": {"max_versions": 3}})
    try:
        assert unique_name.encode() in connection.tables()
        table = connection.table(unique_name)
        with table.batch(timestamp=1000) as batch:
            for i in range(20):
                batch.put(f"row-{i:03d}".encode(), {b"v:count": str(i).encode()})
        table.put(b"row-005", {b"v:count": b"55"}, timestamp=2000)
        table.put(b"row-005", {b"v:count": b"55"}, timestamp=2000)  # same cell, same timestamp: no new version

        cell = table.row(b"row-005", include_timestamp=True)
        assert cell == {b"v:count": (b"55", 2000)}
        assert table.cells(b"row-005", b"v:count", versions=5, include_timestamp=True) == [(b"55", 2000), (b"5", 1000)]
        assert table.row(b"row-005", timestamp=2000) == {b"v:count": b"5"}  # reads before ts 2000

        scanned = list(table.scan(row_start=b"row-010", row_stop=b"row-015"))
        assert [key for key, _ in scanned] == [f"row-{i:03d}".encode() for i in range(10, 15)]
        assert [data[b"v:count"] for _, data in scanned] == [str(i).encode() for i in range(10, 15)]
    finally:
        connection.delete_table(unique_name, disable=True)
    assert unique_name.encode() not in connection.tables()


@pytest.mark.parametrize("jump_after", [1, 3, 1000])
def test_view_keys_counts_every_window_in_range_whatever_its_jumps(
    connection, settings, unique_name, monkeypatch, jump_after
):
    from twinlayer.storage import hbase as hbase_store

    monkeypatch.setattr(hbase_store, "JUMP_AFTER", jump_after)
    connection.create_table(unique_name, {"m": {"max_versions": 1}})
    try:
        table = connection.table(unique_name)
        windows = {f"c{k}": [10_000 * (k + w * 3) for w in range(40)] for k in range(12)}
        with table.batch() as batch:
            for key, starts in windows.items():
                for start in starts:
                    batch.put(hbase_store.row_key("v", key, start), {b"m:n": b"1"})
                batch.put(hbase_store.row_key("v_other", key, 50_000), {b"m:n": b"1"})  # another view, same keys
        pool = hbase_store.pool_for(settings, size=1)
        for low, high in [(0, 10**13 - 1), (300_000, 700_000), (1_000_000, 1_200_000), (5_000_000, 6_000_000)]:
            expected = {k: n for k, starts in windows.items() if (n := sum(low <= s < high for s in starts))}
            assert hbase_store.view_keys(pool, unique_name, "v", low, high) == expected, (low, high)
    finally:
        connection.delete_table(unique_name, disable=True)
