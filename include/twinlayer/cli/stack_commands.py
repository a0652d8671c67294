"""`twinlayer stack …`, `twinlayer demo` and `twinlayer config`: the embedded stack of local processes."""

from __future__ import annotations

import dataclasses
import os
import time
import xmlrpc.client
from typing import Annotated

import typer
from rich.text import Text

from twinlayer.cli.output import SERVICE_DOWN, USAGE, JsonOption, console, emit_json, fail, table
from twinlayer.localstack.services import airflow_login
from twinlayer.localstack.stack import Stack
from twinlayer.model.config import Settings, load_settings

stack_app = typer.Typer(
    help="The embedded stack: every service a local process under supervisord.", no_args_is_help=True
)


def _stack() -> Stack:
    return Stack(load_settings(), out=lambda line: console.print(line, markup=False))


@stack_app.command()
def up() -> None:
    """Start every service and wait until each answers."""
    stack = _stack()
    console.print(f"starting the twinlayer stack (supervisord; logs in {stack.settings.logs_dir})", markup=False)
    console.print(f"stack healthy after {stack.up():.1f}s", style="green")


@stack_app.command()
def down() -> None:
    """Stop every service (data stays in state/)."""
    _stack().down()
    console.print("stack stopped")


@stack_app.command()
def status(as_json: JsonOption = False) -> None:
    """Each service: up or down, and why. Exit 3 when one is down."""
    stack = _stack()
    rows = stack.status()
    user, password = airflow_login(stack.settings)
    if as_json:
        emit_json([{"service": name, "state": state, "detail": why} for name, state, why in rows])
    else:
        colored = [[n, Text(s, style="green" if s == "up" else "red"), w] for n, s, w in rows]
        table(None, ["service", "state", "detail"], colored)
        console.print(Text(f"Airflow login: {user} / {password}  ({stack.settings.url('airflow_port')})"))
    if any(state != "up" for _, state, _ in rows):
        raise typer.Exit(SERVICE_DOWN)


def _service_name(stack: Stack, name: str | None) -> list[str]:
    names = [svc.name for svc in stack.services()]
    if name is None:
        return names
    if name not in names:
        fail(f"no service {name!r}; services: {', '.join(names)}", USAGE)
    return [name]


@stack_app.command()
def logs(
    service: Annotated[str | None, typer.Argument(help="one service; all when left out")] = None,
    lines: Annotated[int, typer.Option("-n", "--lines", help="lines per log")] = 20,
) -> None:
    """The last lines of each service's log."""
    stack = _stack()
    for name in _service_name(stack, service):
        console.rule(str(stack.log_path(name)))
        console.print(stack.tail(name, lines), markup=False)


@stack_app.command()
def restart(
    service: Annotated[str, typer.Argument(help="the service, as `twinlayer stack status` names it")],
    timeout: Annotated[float, typer.Option(help="seconds to wait for it to answer")] = 300,
) -> None:
    """Restart one service and wait until it answers again."""
    stack = _stack()
    (name,) = _service_name(stack, service)
    if not stack.supervisor_running():
        fail("the stack is not running: `twinlayer stack up` (or `make up`) first", SERVICE_DOWN)
    started = time.monotonic()
    try:
        stack.restart(name)
    except xmlrpc.client.Fault as refused:  # supervisord could not start it (SPAWN_ERROR and the like)
        fail(f"{name} did not start ({refused.faultString}):\n{stack.tail(name, 15)}", SERVICE_DOWN)
    why = ""
    with console.status(f"waiting for {name} to answer"):
        while time.monotonic() - started < timeout:
            state, why = next((s, w) for n, s, w in stack.status() if n == name)
            if state == "up":
                console.print(f"{name} answers again after {time.monotonic() - started:.1f}s", style="green")
                return
            time.sleep(1)
    fail(f"{name} did not answer within {timeout:.0f}s: {why}\n{stack.tail(name, 15)}", SERVICE_DOWN)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo() -> None:
        """Bring the stack up and run the demo: live speed views, a batch recompute in Airflow, a merged answer."""
        from twinlayer.localstack import demo as flow

        raise typer.Exit(flow.run(_stack()))

    @app.command()
    def config(as_json: JsonOption = False) -> None:
        """The effective settings: each default, or the TWINLAYER_<NAME> environment variable that replaced it."""
        settings = load_settings()
        rows = []
        for field in dataclasses.fields(Settings):
            variable = f"TWINLAYER_{field.name.upper()}"
            source = variable if variable in os.environ else "default"
            rows.append({"name": field.name, "value": getattr(settings, field.name), "from": source})
        if as_json:
            emit_json({row["name"]: row["value"] for row in rows})
        else:
            table(None, ["setting", "value", "from"], [[r["name"], r["value"], r["from"]] for r in rows])
