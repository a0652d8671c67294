"""The `twinlayer` command: run the embedded stack and the demo from a terminal or a Makefile."""

from __future__ import annotations

import argparse
import sys

from twinlayer.localstack.stack import Stack, StackError
from twinlayer.model.config import load_settings


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


def _generate(stack: Stack, args: argparse.Namespace) -> int:
    import json

    from twinlayer.localstack.generator import Workload, produce

    workload = Workload(
        rate=args.rate,
        count=args.count,
        duration=args.duration,
        late_fraction=args.late,
        late_by_ms=int(args.late_by * 1000),
        duplicate_fraction=args.duplicates,
        malformed_fraction=args.malformed,
        seed=args.seed,
    )
    topic = args.topic or stack.settings.events_topic
    print(json.dumps(produce(stack.settings.kafka_bootstrap, topic, workload, client=args.client)))
    return 0


def _query(stack: Stack, args: argparse.Namespace) -> int:
    import datetime as dt
    import json
    import time

    from twinlayer.model.hours import parse_time
    from twinlayer.model.views import by_name
    from twinlayer.serving.merge import Server

    views = by_name()
    if args.view not in views:
        raise ValueError(f"unknown view {args.view!r}; views: {', '.join(views)}")
    now_ms = int(time.time() * 1000)
    start, end = parse_time(args.start, now_ms), parse_time(args.end, now_ms) if args.end else now_ms + 1
    answer = Server(stack.settings).query(views[args.view], args.key, start, end)
    if args.json:
        print(json.dumps(answer.as_dict(), indent=2))
        return 0

    def when(ms: int | None) -> str:
        if ms is None:
            return "none (no hour published yet)"
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    print(f"{answer.view}  key={answer.key}  boundary={when(answer.boundary_ms)}  ({len(answer.windows)} windows)")
    for w in answer.windows:
        values = "  ".join(
            f"{k}={v}"
            for k, v in w.items()
            if k not in ("window_start_ms", "window_end_ms", "source", "version", "exact")
        )
        origin = f"batch v{w['version']}" if w["source"] == "batch" else "speed"
        print(f"  {when(w['window_start_ms'])[:-4]}  [{origin}]  {values}")
    return 0


def _rollback(stack: Stack, args: argparse.Namespace) -> int:
    import json

    from twinlayer.batch.publish import rollback
    from twinlayer.model.hours import hour_start
    from twinlayer.storage.hbase import pool_for

    entry = rollback(pool_for(stack.settings, size=1), stack.settings, hour_start(args.hour))
    print(json.dumps({"hour": args.hour, **entry}))
    return 0


def _views(stack: Stack, args: argparse.Namespace) -> int:
    from twinlayer.model.views import VIEWS

    for view in VIEWS:
        measures = ", ".join(f"{m.name}={m.kind}({m.column or '*'})" for m in view.measures)
        print(
            f"{view.name}: per {' x '.join(view.dimensions)} per {view.window_seconds}s"
            f"{' where ' + view.filter if view.filter else ''}: {measures}"
        )
    return 0


def _demo(stack: Stack, args: argparse.Namespace) -> int:
    from twinlayer.localstack import demo

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

    gen = sub.add_parser("generate", help="send generated ad events (with planted faults) to Kafka")
    gen.add_argument("--rate", type=float, default=1000.0, help="events per second; 0 = as fast as possible")
    amount = gen.add_mutually_exclusive_group(required=True)
    amount.add_argument("--count", type=int)
    amount.add_argument("--duration", type=float, help="seconds")
    gen.add_argument("--late", type=float, default=0.0, help="fraction of late events")
    gen.add_argument("--late-by", type=float, default=300.0, help="how late, in seconds")
    gen.add_argument("--duplicates", type=float, default=0.0, help="fraction of re-sent events")
    gen.add_argument("--malformed", type=float, default=0.0, help="fraction of refused records")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--topic")
    gen.add_argument("--client", choices=("librdkafka", "kafka-python"), default="librdkafka")
    gen.set_defaults(func=_generate)

    query = sub.add_parser("query", help="read a view for one key: batch before the boundary, speed after")
    query.add_argument("view")
    query.add_argument("--key", required=True, help="dimension values joined by '|', e.g. CAMPAIGN|view")
    query.add_argument("--from", dest="start", default="15m", help="epoch ms, ISO-8601, or back from now: 15m")
    query.add_argument("--to", dest="end", help="same forms; default now")
    query.add_argument("--json", action="store_true")
    query.set_defaults(func=_query)

    sub.add_parser("views", help="list the view definitions").set_defaults(func=_views)

    back = sub.add_parser("rollback", help="point a published hour back at its previous batch version")
    back.add_argument("hour", help="UTC hour, YYYY-MM-DDTHH")
    back.set_defaults(func=_rollback)
    return parser


def main(argv: list[str] | None = None) -> int:
    from thriftpy2.thrift import TException

    args = build_parser().parse_args(argv)
    try:
        return args.func(Stack(load_settings()), args)
    except (StackError, ValueError) as exc:
        print(f"twinlayer: {exc}", file=sys.stderr)
        return 2
    except (OSError, TException) as exc:  # a service that does not answer: say so, not a traceback
        print(f"twinlayer: a service did not answer ({exc}); is the stack up? (make status)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
