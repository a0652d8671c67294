"""How the `twinlayer` command speaks: Rich tables and progress for people, ``--json`` for scripts, and exit codes a
script can test — 0 done, 1 failed, 2 wrong usage (an unknown view, a key of the wrong shape), 3 a service down."""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

FAILED, USAGE, SERVICE_DOWN = 1, 2, 3

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def cell(value: Any) -> Text:
    """A value shown as it is: brackets in a payload or a key are text, not Rich markup."""
    return value if isinstance(value, Text) else Text(str(value))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    grid = Table(title=cell(title) if title else None, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(cell(value) for value in row))
    console.print(grid)


def say_error(message: str) -> None:
    errors.print(f"twinlayer: {message}", style="red", markup=False, soft_wrap=True)


def fail(message: str, code: int = FAILED) -> NoReturn:
    say_error(message)
    raise typer.Exit(code)
