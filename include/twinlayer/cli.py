"""The `twinlayer` command: run the embedded stack and the demo from a terminal or a Makefile."""

from __future__ import annotations

import argparse
import sys

from twinlayer.config import load_settings
from twinlayer.stack import Stack, StackError


def _stack_up(stack: Stack, args: argparse.Namespace) -> int:
    print("starting the twinlayer stack (supervisord; logs in", stack.settings.logs_dir, ")")
    seconds = stack.up()
    print(f"stack healthy after {seconds:.1f}s")
    return 0


def _stack_down(stack: Stack, args: argparse.Namespace) -> int:
    stack.down()
    print("stack stopped")
    return 0


def _stack_status(stack: Stack, args: argparse.Namespace) -> int:
    rows = stack.status()
    for name, state, why in rows:
        print(f"{name:<22} {state:<5} {why}")
    return 0 if all(state == "up" for _, state, _ in rows) else 1


def _stack_logs(stack: Stack, args: argparse.Namespace) -> int:
    names = [args.service] if args.service else [svc.name for svc in stack.services()]
    for name in names:
        print(f"==> {stack.log_path(name)} <==")
        print(stack.tail(name, args.lines))
    return 0


def _demo(stack: Stack, args: argparse.Namespace) -> int:
    from twinlayer import demo

    return demo.run(stack)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twinlayer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    stack = sub.add_parser("stack", help="the embedded local stack").add_subparsers(dest="action", required=True)
    stack.add_parser("up", help="start every service and wait until each answers").set_defaults(func=_stack_up)
    stack.add_parser("down", help="stop every service").set_defaults(func=_stack_down)
    stack.add_parser("status", help="each service: up or down, and why").set_defaults(func=_stack_status)
    logs = stack.add_parser("logs", help="the last lines of each service's log")
    logs.add_argument("service", nargs="?")
    logs.add_argument("-n", "--lines", type=int, default=20)
    logs.set_defaults(func=_stack_logs)
    sub.add_parser("demo", help="bring the stack up and run the demo flow").set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(Stack(load_settings()), args)
    except (StackError, ValueError) as exc:
        print(f"twinlayer: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
