"""The serving layer's refusals, decided before HBase is read (pure logic: the pool is never touched)."""

import pytest

from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS
from twinlayer.model.views import by_name
from twinlayer.serving.merge import LAST_MS, Server


class UntouchablePool:
    def connection(self):
        raise AssertionError("a refused query must not read HBase")


@pytest.fixture
def server():
    return Server(Settings(serving_max_range_hours=24), pool=UntouchablePool())


VIEW = by_name()["campaign_activity_1m"]


@pytest.mark.parametrize(
    ("key", "start", "end", "why"),
    [
        ("c1|click", 0, 99999999999999999999, "0 <= from < to"),
        ("c1|click", -5, 1000, "0 <= from < to"),
        ("c1|click", 2000, 1000, "0 <= from < to"),
        ("c1|click", 0, LAST_MS, "longer than the 24 hours"),
        ("c1|click", 10 * HOUR_MS, 34 * HOUR_MS + 1, "longer than the 24 hours"),
        ("c1", 0, 1000, "looks like <campaign_id>|<event_type>"),
        ("c1|hover", 0, 1000, "event_type is one of"),
    ],
)
def test_hostile_queries_are_refused_before_any_read(server, key, start, end, why):
    with pytest.raises(ValueError, match=why.replace("|", r"\|")):
        server.query(VIEW, key, start, end)


def test_the_longest_range_allowed_is_exactly_the_setting(server):
    server.check_range(10 * HOUR_MS, 34 * HOUR_MS)


def test_the_speed_table_is_read_only_outside_published_hours():
    from twinlayer.serving.merge import unpublished_spans

    h = 1_790_006_400_000
    published = {h + i * HOUR_MS: {"version": 1} for i in (0, 1, 3)}
    assert unpublished_spans(published, h + 10, h + 5 * HOUR_MS) == [
        (h + 2 * HOUR_MS, h + 3 * HOUR_MS),
        (h + 4 * HOUR_MS, h + 5 * HOUR_MS),
    ]
    assert unpublished_spans(published, h + 10, h + HOUR_MS - 5) == []
    assert unpublished_spans({}, h + 10, h + 20) == [(h + 10, h + 20)]
    assert unpublished_spans(published, h - 50, h + 30) == [(h - 50, h)]
