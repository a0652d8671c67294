"""`twinlayer backfill` and `twinlayer rollback`: the batch layer's runs over a range of hours, and its way back."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from twinlayer.cli.output import FAILED, JsonOption, console, emit_json, fail
from twinlayer.model.config import load_settings
from twinlayer.model.hours import HOUR_MS, hour_label, hour_start, hours_between

BACKFILLED_DAGS = ("twinlayer_recompute", "twinlayer_archive_quality")


def register(app: typer.Typer) -> None:
    @app.command()
    def backfill(
        dag: Annotated[str, typer.Argument(help=f"one of {', '.join(BACKFILLED_DAGS)}")],
        start: Annotated[str, typer.Option("--from", help="first hour: 2026-11-24T05, ISO-8601, epoch ms or 6h")],
        end: Annotated[str, typer.Option("--to", help="last hour, same forms")],
        reprocess: Annotated[bool, typer.Option(help="run hours again that already have a successful run")] = False,
        timeout: Annotated[float, typer.Option(help="seconds to wait for the backfill")] = 3600,
        as_json: JsonOption = False,
    ) -> None:
        """Airflow's backfill of a DAG over whole UTC hours, with each run's progress; exit 1 if a run failed."""
        from twinlayer.localstack.airflow_api import AirflowClient

        if dag not in BACKFILLED_DAGS:
            raise ValueError(f"{dag!r} is not backfilled by hour; choose one of {', '.join(BACKFILLED_DAGS)}")
        first, last = hours_between(start, end)
        hours = (last - first) // HOUR_MS + 1
        client = AirflowClient.for_stack(load_settings(), timeout=30)
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console, transient=True, disable=as_json) as progress:
            task = progress.add_task(f"{dag} {hour_label(first)} … {hour_label(last)}", total=hours)

            def show(runs: dict[int, str]) -> None:
                states = Counter(runs.values())
                done = states["success"] + states["failed"]
                progress.update(
                    task,
                    completed=done,
                    description=f"{dag}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())),
                )

            # every logical date inside the hours: the archive-quality DAG's runs start at ten past
            runs = client.backfill(
                dag, first, last + HOUR_MS - 1, timeout=timeout, reprocess=reprocess, on_progress=show
            )
        outcome = {hour_label(ms): state for ms, state in sorted(runs.items())}
        if as_json:
            emit_json({"dag": dag, "from": hour_label(first), "to": hour_label(last), "runs": outcome})
        else:
            for label, state in outcome.items():
                console.print(f"{label}  {state}", style="green" if state == "success" else "red")
        failed = [label for label, state in outcome.items() if state != "success"]
        if failed:
            fail(f"{len(failed)} of {hours} hours did not succeed: {', '.join(failed)}", FAILED)
        if len(outcome) < hours:
            fail(f"Airflow ran {len(outcome)} of {hours} hours (the others already had a run: --reprocess)", FAILED)

    @app.command()
    def rollback(
        hour: Annotated[str, typer.Argument(help="the UTC hour, YYYY-MM-DDTHH")], as_json: JsonOption = False
    ) -> None:
        """Point a published hour back at its previous batch version."""
        from twinlayer.batch.publish import rollback as roll_back
        from twinlayer.storage.hbase import pool_for

        settings = load_settings()
        entry = roll_back(pool_for(settings, size=1), settings, hour_start(hour))
        if as_json:
            emit_json({"hour": hour, **entry})
        else:
            console.print(f"{hour} now serves batch version {entry.get('version')}: {entry}", markup=False)
