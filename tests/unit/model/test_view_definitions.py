"""Fingerprints and view files: what decides a view's values changes its fingerprint and its stored name, nothing
else does; a TOML file of views loads into the same ``View`` objects, and a bad one names the file and the view.
Pure logic."""

import dataclasses

import pytest

from twinlayer.batch.publish import definition_matches, previous_views
from twinlayer.model.view_files import load_views
from twinlayer.model.views import DEFAULT_VIEWS, Measure, View, fingerprints, views_fingerprint

BASE = View("v", ("campaign_id",), 60, (Measure("n", "count"),), filter="event_type = 'view'", description="a")


def test_a_fingerprint_follows_what_decides_the_values_and_nothing_else():
    assert BASE.fingerprint == dataclasses.replace(BASE, description="another text").fingerprint
    changes = [
        dataclasses.replace(BASE, window_seconds=30),
        dataclasses.replace(BASE, filter=None),
        dataclasses.replace(BASE, dimensions=("campaign_id", "event_type")),
        dataclasses.replace(BASE, measures=(Measure("n", "count"), Measure("u", "distinct", "user_id"))),
        dataclasses.replace(BASE, name="w"),
    ]
    prints = {BASE.fingerprint, *(view.fingerprint for view in changes)}
    assert len(prints) == len(changes) + 1
    assert BASE.stored_name == f"v@{BASE.fingerprint}" and len(BASE.fingerprint) == 8
    # the views query's state follows the order of the views: another order is another checkpoint
    assert views_fingerprint([BASE, changes[-1]]) != views_fingerprint([changes[-1], BASE])
    assert views_fingerprint([BASE]) != views_fingerprint([changes[0]])


def test_a_views_file_loads_the_same_definitions(tmp_path):
    path = tmp_path / "views.toml"
    path.write_text(
        """
[[view]]
name = "campaign_activity_1m"
dimensions = ["campaign_id", "event_type"]
window_seconds = 60
description = "from a file"
measures = [
  {name = "events", kind = "count"},
  {name = "users", kind = "distinct", column = "user_id"},
  {name = "first_event_ms", kind = "min", column = "event_time_ms"},
  {name = "last_event_ms", kind = "max", column = "event_time_ms"},
]
"""
    )
    (loaded,) = load_views(path)
    default = next(v for v in DEFAULT_VIEWS if v.name == "campaign_activity_1m")
    assert loaded.fingerprint == default.fingerprint and loaded.description == "from a file"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "at least one"),
        ('[[view]]\nname = "v"\ndimensions = ["a"]\nwindow_seconds = 10\n', "measures"),
        ("[[view]\n", "cannot read"),
        (
            '[[view]]\nname = "v"\ndimensions = ["a"]\nwindow_seconds = 10\nmeasures = [{name = "n", kind = "avg"}]\n',
            "unknown kind",
        ),
        (
            '[[view]]\nname = "v"\ndimensions = ["a"]\nwindow_seconds = 10\nmeasures = [{name = "n", kind = "count"}]\n'
            * 2,
            "a name of its own",
        ),
    ],
)
def test_a_bad_views_file_names_the_file_and_the_view(tmp_path, text, error):
    path = tmp_path / "views.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error) as raised:
        load_views(path)
    assert str(path) in str(raised.value)


def test_a_publication_matches_a_view_only_with_its_definition():
    changed = dataclasses.replace(BASE, window_seconds=30)
    entry = {"version": 40, "views": fingerprints([BASE]), "previous": [30, 20], "previous_views": [{"v": "x"}]}
    assert definition_matches(entry, BASE) and not definition_matches(entry, changed)
    assert not definition_matches({"version": 40, "previous": []}, BASE)  # published before definitions were kept
    assert previous_views(entry) == [{"v": "x"}, None]
