"""`twinlayer speed rebuild`: the speed layer's views computed again from Kafka, from a chosen time on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from twinlayer.cli.output import JsonOption, console, emit_json
from twinlayer.model.config import load_settings
from twinlayer.model.hours import parse_time
from twinlayer.speed import rebuild

speed_app = typer.Typer(help="The speed layer's views.", no_args_is_help=True)


@speed_app.command("rebuild")
def rebuild_views(
    since: Annotated[
        str | None, typer.Option("--since", help="Kafka time to read from: ISO-8601, epoch ms or 2h (ago)")
    ] = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="the speed layer's checkpoint folder (default: the stack's)")
    ] = None,
    wait: Annotated[bool, typer.Option(help="wait for the rebuild, showing its progress")] = True,
    wait_only: Annotated[bool, typer.Option("--wait-only", help="follow the rebuild already asked for")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 3600,
    as_json: JsonOption = False,
) -> None:
    """Ask the running speed layer to rebuild its views from Kafka records received since a time: it restarts its
    views query from there (the archive keeps going), rewriting the same cells; exit 1 if it does not finish."""
    folder = checkpoint_dir or load_settings().checkpoint_dir
    if not wait_only:
        if since is None:
            raise ValueError("give --since (or --wait-only to follow a rebuild already asked for)")
        rebuild.request(folder, parse_time(since, int(time.time() * 1000)))
        if not wait:
            console.print(f"asked the speed layer ({folder}) to rebuild its views")
            return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("waiting for the speed layer", total=None)

        def show(status: rebuild.Status) -> None:
            if status.started_ms:
                progress.update(
                    task,
                    description=f"views rebuild ({status.reason})",
                    completed=status.records_done,
                    total=status.records_total,
                )

        done = rebuild.wait(folder, timeout, show)
    summary = {
        "since_ms": done.since_ms,
        "records": done.records_done,
        "seconds": done.seconds,
        "reason": done.reason,
    }
    if as_json:
        emit_json(summary)
    else:
        rate = done.records_done / done.seconds if done.seconds else 0.0
        console.print(f"views rebuilt: {done.records_done:,} records in {done.seconds:.1f} s ({rate:,.0f} records/s)")
