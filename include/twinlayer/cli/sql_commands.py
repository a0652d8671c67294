"""`twinlayer sql`: SQL over the merged views and the master dataset, with DuckDB.

Each view a query names is a table of its merged windows over ``--from``/``--to`` (``serving.frames``: batch before
the boundary, speed after it, a ``source`` column); ``archive`` is every committed event of the master dataset
(its Parquet files, as the batch layer reads them). Only the tables a query names are read.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from twinlayer.cli.output import console, emit_json, table
from twinlayer.cli.view_commands import FromOption, ToOption, time_range
from twinlayer.model.config import Settings, load_settings
from twinlayer.model.views import VIEWS

ARCHIVE_TABLE = "archive"


def named_tables(sql: str) -> list[str]:
    """The views (and ``archive``) a query mentions as a word, in any case (SQL's names are case-insensitive)."""
    words = {word.lower() for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql)}
    return [name for name in [view.name for view in VIEWS] + [ARCHIVE_TABLE] if name.lower() in words]


def whole_numbers(frame):
    """Float columns that hold only whole numbers (DuckDB's sums of integers arrive as floats) as integers."""
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind == "f" and values.dropna().apply(float.is_integer).all():
            frame[column] = values.astype("Int64")
    return frame


def run_sql(settings: Settings, sql: str, from_ms: int, to_ms: int):
    """The query's answer as a pandas DataFrame."""
    import duckdb

    from twinlayer.model.views import by_name
    from twinlayer.serving.frames import windows_frame
    from twinlayer.serving.merge import Server
    from twinlayer.storage.archive import committed_paths

    catalog = by_name()
    database = duckdb.connect()
    try:
        server = None
        for name in named_tables(sql):
            if name == ARCHIVE_TABLE:
                files = [str(path) for path in committed_paths(settings.archive_dir)]
                if not files:
                    raise ValueError("the archive holds no committed file yet")
                database.read_parquet(files, hive_partitioning=True, union_by_name=True).create_view(ARCHIVE_TABLE)
                continue
            server = server or Server(settings, None)
            database.register(name, windows_frame(server, catalog[name], from_ms, to_ms))
        try:
            return whole_numbers(database.execute(sql).df())
        except duckdb.Error as exc:
            raise ValueError(f"SQL: {str(exc).splitlines()[0]}") from None
    finally:
        database.close()


def register(app: typer.Typer) -> None:
    @app.command()
    def sql(
        query: Annotated[str, typer.Argument(help="DuckDB SQL over the views' names and `archive`")],
        start: FromOption = "24h",
        end: ToOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="rows as JSON")] = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="rows as CSV")] = False,
    ) -> None:
        """SQL over the merged views (tables named after them: batch before the boundary, speed after it, a
        `source` column) and over `archive`, the master dataset's events."""
        from_ms, to_ms = time_range(start, end)
        frame = run_sql(load_settings(), query, from_ms, to_ms)
        if as_json:
            emit_json(frame.to_dict(orient="records"))
        elif as_csv:
            typer.echo(frame.to_csv(index=False), nl=False)
        else:
            table(None, [str(c) for c in frame.columns], frame.astype(object).values.tolist())
            console.print(f"{len(frame)} rows", style="dim")
