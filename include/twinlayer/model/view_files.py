"""View definitions from a TOML file, for ``TWINLAYER_VIEWS``: the same ``View`` objects as ``views.DEFAULT_VIEWS``,
so a data engineer changes views without editing the package.

    [[view]]
    name = "purchases_by_ad_type_1m"
    dimensions = ["ad_type"]
    window_seconds = 60
    filter = "event_type = 'purchase'"
    measures = [{name = "purchases", kind = "count"}, {name = "buyers", kind = "distinct", column = "user_id"}]
"""

from __future__ import annotations

import os
import tomllib

from twinlayer.model.views import Measure, View


def load_views(path: str | os.PathLike[str]) -> tuple[View, ...]:
    """The views of a TOML file: ``[[view]]`` tables with the fields of ``View``, measures as inline tables
    (``{name = "users", kind = "distinct", column = "user_id"}``). Raises ValueError naming the file and the view."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read the view definitions of {path} (TWINLAYER_VIEWS): {exc}") from exc
    views = []
    for number, table in enumerate(document.get("view", []), 1):
        try:
            measures = tuple(Measure(**m) for m in table.pop("measures"))
            views.append(View(dimensions=tuple(table.pop("dimensions")), measures=measures, **table))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: view {number} ({table.get('name', '?')}): {exc}") from exc
    names = [view.name for view in views]
    if not views or len(set(names)) != len(names):
        raise ValueError(f"{path}: needs at least one [[view]], each with a name of its own")
    return tuple(views)
