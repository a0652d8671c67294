"""`twinlayer views`, `twinlayer query` and `twinlayer keys`: what the views are, what they hold, and their answers."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import typer

from twinlayer.cli.output import JsonOption, console, emit_json, table
from twinlayer.model.config import load_settings
from twinlayer.model.hours import parse_time
from twinlayer.model.views import VIEWS, View, by_name, check_key, key_shape

FromOption = Annotated[str, typer.Option("--from", help="epoch ms, ISO-8601, or back from now: 15m, 2h, 7d")]
ToOption = Annotated[str | None, typer.Option("--to", help="same forms; now when left out")]


def view_named(name: str) -> View:
    views = by_name()
    if name not in views:
        raise ValueError(f"unknown view {name!r}; views: {', '.join(views)}")
    return views[name]


def time_range(start: str, end: str | None) -> tuple[int, int]:
    now_ms = int(time.time() * 1000)
    from_ms, to_ms = parse_time(start, now_ms), parse_time(end, now_ms) if end else now_ms + 1
    if from_ms >= to_ms:
        raise ValueError(f"--from ({start}) must come before --to ({end or 'now'})")
    return from_ms, to_ms


def utc(ms: int | None) -> str:
    if ms is None:
        return "none (no hour published yet)"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def describe(view: View) -> dict:
    return {
        "name": view.name,
        "key": key_shape(view),
        "window_seconds": view.window_seconds,
        "filter": view.filter,
        "measures": {m.name: f"{m.kind}({m.column or '*'})" for m in view.measures},
        "description": view.description,
        "fingerprint": view.fingerprint,
    }


def register(app: typer.Typer) -> None:
    @app.command()
    def views(as_json: JsonOption = False) -> None:
        """The view definitions: key shape, window, filter and measures."""
        described = [describe(view) for view in VIEWS]
        if as_json:
            emit_json(described)
            return
        rows = [
            [
                d["name"],
                d["key"],
                f"{d['window_seconds']}s",
                d["filter"] or "",
                ", ".join(f"{k}={v}" for k, v in d["measures"].items()),
                d["fingerprint"],
            ]
            for d in described
        ]
        table(None, ["view", "key", "window", "filter", "measures", "fingerprint"], rows)

    @app.command()
    def query(
        view: Annotated[str, typer.Argument(help="a view name (twinlayer views)")],
        key: Annotated[
            str, typer.Option("--key", help="the view's dimension values joined by '|' (twinlayer keys VIEW)")
        ],
        start: FromOption = "15m",
        end: ToOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """A view's windows for one key: batch values before the time boundary, speed values after it."""
        from twinlayer.serving.merge import Server

        chosen = view_named(view)
        check_key(chosen, key)
        from_ms, to_ms = time_range(start, end)
        answer = Server(load_settings()).query(chosen, key, from_ms, to_ms)
        if as_json:
            emit_json(answer.as_dict())
            return
        rows = [
            [
                utc(w["window_start_ms"]),
                f"batch v{w['version']}" if w["source"] == "batch" else "speed",
                *(w.get(m.name) for m in chosen.measures),
            ]
            for w in answer.windows
        ]
        title = f"{chosen.name}  key={key}  boundary={utc(answer.boundary_ms)}  ({len(rows)} windows)"
        table(title, ["window start (UTC)", "from", *(m.name for m in chosen.measures)], rows)

    @app.command()
    def keys(
        view: Annotated[str, typer.Argument(help="a view name (twinlayer views)")],
        start: FromOption = "15m",
        end: ToOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """The keys a view holds, with the number of windows of each in the speed and in the batch table."""
        from twinlayer.storage import hbase as hbase_store

        chosen = view_named(view)
        from_ms, to_ms = time_range(start, end)
        settings = load_settings()
        pool = hbase_store.pool_for(settings, size=1)
        speed = hbase_store.view_keys(pool, settings.speed_table, chosen.stored_name, from_ms, to_ms)
        batch = hbase_store.view_keys(pool, settings.batch_table, chosen.stored_name, from_ms, to_ms)
        found = [
            {"key": k, "speed_windows": speed.get(k, 0), "batch_windows": batch.get(k, 0)}
            for k in sorted({*speed, *batch})
        ]
        if as_json:
            emit_json(found)
            return
        title = f"{chosen.name}: keys are {key_shape(chosen)}; windows from {utc(from_ms)} to {utc(to_ms)} UTC"
        table(
            title,
            ["key", "speed windows", "batch windows"],
            [[f["key"], f["speed_windows"], f["batch_windows"]] for f in found],
        )
        console.print(f"{len(found)} keys")
