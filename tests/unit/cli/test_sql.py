"""`twinlayer sql`'s own logic: which tables a query reads, and how its numbers come back (pure logic)."""

import pandas as pd

from twinlayer.cli.sql_commands import named_tables, whole_numbers


def test_only_the_tables_a_query_names_are_read():
    assert named_tables("SELECT key, avg(events) FROM campaign_activity_1m GROUP BY key") == ["campaign_activity_1m"]
    assert named_tables("select * from archive a join campaign_views_10s v on true") == [
        "campaign_views_10s",
        "archive",
    ]
    assert named_tables("SELECT 'campaign_views_10sx', archives FROM x") == []
    assert named_tables("SELECT * FROM Campaign_Views_10s JOIN ARCHIVE USING (key)") == [
        "campaign_views_10s",
        "archive",
    ]


def test_sums_of_integers_come_back_as_integers_and_fractions_stay():
    frame = whole_numbers(pd.DataFrame({"views": [3.0, None, 12.0], "mean": [1.5, 2.0, None], "key": ["a", "b", "c"]}))
    assert str(frame["views"].dtype) == "Int64" and frame["views"].tolist()[0] == 3
    assert frame["mean"].dtype.kind == "f"
