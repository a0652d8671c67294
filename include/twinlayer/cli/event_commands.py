"""`twinlayer generate` and `twinlayer dlq tail`: events into Kafka, and the records the speed layer refused."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from twinlayer.cli.output import JsonOption, console, emit_json, table
from twinlayer.model.config import load_settings

dlq_app = typer.Typer(
    help="The dead-letter topic: every record the speed layer refused, with the reason.", no_args_is_help=True
)


def _fraction(name: str):
    return typer.Option(f"--{name}", min=0.0, max=1.0, help=f"fraction of {name} records")


@dlq_app.command()
def tail(
    count: Annotated[int, typer.Option("-n", "--count", min=1, max=10_000, help="how many records")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The newest dead letters: when, why, where Kafka kept the original, and the start of its payload."""
    from twinlayer.storage.kafka import latest_records

    settings = load_settings()
    letters = []
    for record in latest_records(settings.kafka_bootstrap, settings.dlq_topic, count):
        try:
            value = json.loads(record["value"] or b"{}")
        except ValueError:
            value = None
        if not isinstance(value, dict):
            value = {"reason": "(not an envelope)", "payload": repr((record["value"] or b"")[:200])}
        letters.append(
            {
                "key": (record["key"] or b"").decode(errors="replace"),
                "dlq_timestamp_ms": record["timestamp_ms"],
                **value,
            }
        )
    if as_json:
        emit_json(letters)
        return
    rows = [
        [
            dt.datetime.fromtimestamp(letter["dlq_timestamp_ms"] / 1000, dt.UTC).strftime("%H:%M:%S"),
            letter.get("reason", ""),
            letter["key"],
            str(letter.get("payload"))[:80] + (" …" if letter.get("payload_truncated") else ""),
        ]
        for letter in letters
    ]
    table(f"{settings.dlq_topic}: newest {len(rows)}", ["time (UTC)", "reason", "source record", "payload"], rows)


def register(app: typer.Typer) -> None:
    @app.command()
    def generate(
        rate: Annotated[float, typer.Option(min=0, help="events per second; 0 = as fast as possible")] = 1000.0,
        count: Annotated[int | None, typer.Option(min=1, help="how many events")] = None,
        duration: Annotated[float | None, typer.Option(min=0, help="seconds")] = None,
        late: Annotated[float, _fraction("late")] = 0.0,
        late_by: Annotated[float, typer.Option(min=0, help="how late, in seconds")] = 300.0,
        duplicates: Annotated[float, _fraction("duplicates")] = 0.0,
        malformed: Annotated[float, _fraction("malformed")] = 0.0,
        seed: int = 42,
        topic: Annotated[str | None, typer.Option(help="the events topic when left out")] = None,
        client: Annotated[str, typer.Option(help="librdkafka or kafka-python")] = "librdkafka",
        as_json: JsonOption = False,
    ) -> None:
        """Send generated ad events to Kafka, with late, duplicated and malformed ones planted."""
        from twinlayer.localstack.generator import Workload, produce
        from twinlayer.storage.kafka import end_offsets

        if (count is None) == (duration is None):
            raise typer.BadParameter("give exactly one of --count and --duration")
        workload = Workload(
            rate=rate,
            count=count,
            duration=duration,
            late_fraction=late,
            late_by_ms=int(late_by * 1000),
            duplicate_fraction=duplicates,
            malformed_fraction=malformed,
            seed=seed,
        )
        settings = load_settings()
        target = topic or settings.events_topic
        end_offsets(settings.kafka_bootstrap, target)  # a broker that does not answer fails here, in seconds
        total = count or (int(rate * duration) if rate and duration else None)
        columns = [TextColumn("sending to " + target), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console, transient=True, disable=as_json) as progress:
            task = progress.add_task("generate", total=total)
            result = produce(
                settings.kafka_bootstrap,
                target,
                workload,
                client=client,
                on_progress=lambda sent: progress.update(task, completed=sent),
            )
        if as_json:
            emit_json(result)
        else:
            console.print(
                f"sent {result['sent']:,} events to {target} in {result['seconds']:.1f}s "
                f"({result['events_per_second']:,.0f}/s, {client})",
                markup=False,
            )
