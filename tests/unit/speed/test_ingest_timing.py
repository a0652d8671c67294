"""When the ingest query's archive write starts: half a window after a window's end, so it never runs beside the
views batch that completes a window. Pure logic, no Spark."""

import pytest

from twinlayer.speed.stream import away_from_window_ends


@pytest.mark.parametrize(
    ("now", "wait"),
    [
        (1_000.004, 4.996),  # a trigger on a window end waits for the middle of the window
        (1_001.5, 3.5),
        (1_002.5, 0.0),  # anywhere else (a catch-up's batches follow each other): at once
        (1_005.0, 0.0),
        (1_009.9, 0.0),
    ],
)
def test_archive_writes_start_mid_window(now, wait):
    assert away_from_window_ends(now, 10.0) == pytest.approx(wait, abs=1e-6)


def test_the_wait_never_exceeds_half_a_window():
    assert max(away_from_window_ends(t / 10, 60.0) for t in range(0, 1200)) == pytest.approx(30.0)
