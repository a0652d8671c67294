"""The `twinlayer` command: the embedded stack, the demo, the views, the events and the batch layer from a terminal.

Built on Typer; each group of commands lives in its own module. ``main`` turns the errors a user can meet into one
line and an exit code (see ``output``) instead of a traceback: a service that does not answer is exit 3.
"""

from __future__ import annotations

import sys

import typer

from twinlayer.cli import batch_commands, event_commands, speed_commands, sql_commands, stack_commands, view_commands
from twinlayer.cli.output import FAILED, SERVICE_DOWN, USAGE, say_error

app = typer.Typer(
    name="twinlayer",
    help="twinlayer: one definition of every view, computed by the speed and the batch layer, merged at read time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(stack_commands.stack_app, name="stack")
app.add_typer(event_commands.dlq_app, name="dlq")
app.add_typer(speed_commands.speed_app, name="speed")
for module in (stack_commands, view_commands, sql_commands, event_commands, batch_commands):
    module.register(app)


def _unreachable() -> tuple[type[BaseException], ...]:
    """Errors that mean a service did not answer at all (as opposed to answering with an error)."""
    from confluent_kafka import KafkaException
    from kafka.errors import KafkaError
    from thriftpy2.transport import TTransportException

    from twinlayer.storage.hbase import HBaseUnavailable

    return (HBaseUnavailable, KafkaException, KafkaError, TTransportException, OSError)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().replace("\\n", "\n").splitlines()[0] if text.strip() else text
    return line if len(line) <= limit else line[:limit] + " …"


def main(argv: list[str] | None = None) -> int:
    from thriftpy2.thrift import TException

    from twinlayer.localstack.services import StackError

    try:
        app(args=argv, prog_name="twinlayer")  # Typer itself answers --help and wrong usage (exit 2)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else FAILED)
    except StackError as exc:  # a service that did not start: the message ends with its log's tail
        say_error(str(exc))
        return SERVICE_DOWN
    except ValueError as exc:
        say_error(str(exc))
        return USAGE
    except TimeoutError as exc:
        say_error(str(exc))
        return FAILED
    except _unreachable() as exc:
        message = getattr(exc, "message", None) or str(exc) or repr(exc)  # Thrift errors carry theirs apart
        detail = _first_line(message.decode(errors="replace") if isinstance(message, bytes) else str(message))
        say_error(
            f"a service did not answer ({type(exc).__name__}: {detail}); is the stack up? (twinlayer stack status)"
        )
        return SERVICE_DOWN
    except TException as exc:  # HBase answered, with an error
        message = getattr(exc, "message", None) or repr(exc)
        say_error(
            f"HBase: {_first_line(message.decode(errors='replace') if isinstance(message, bytes) else str(message))}"
        )
        return FAILED
    except RuntimeError as exc:
        say_error(str(exc))
        return FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
