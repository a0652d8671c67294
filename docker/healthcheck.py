"""Container health checks of the twinlayer image: exit 0 when the service answers, 1 with the reason otherwise.

healthcheck.py probe NAME                 a probe of twinlayer.ops.probes.PROBES (kafka, hbase, speed-layer, ...)
healthcheck.py tcp HOST PORT_FIELD...     each port of twinlayer.model.config.Settings accepts a connection on HOST
healthcheck.py http URL [TEXT]            HTTP 200, and TEXT in the body when given
"""

from __future__ import annotations

import socket
import sys
import urllib.request


def check(argv: list[str]) -> None:
    kind, *args = argv
    if kind == "probe":
        from twinlayer.model.config import load_settings
        from twinlayer.ops.probes import PROBES

        PROBES[args[0]](load_settings())
    elif kind == "tcp":
        from twinlayer.model.config import load_settings

        settings = load_settings()
        for field in args[1:]:
            with socket.create_connection((args[0], getattr(settings, field)), timeout=3):
                pass
    elif kind == "http":
        with urllib.request.urlopen(args[0], timeout=5) as response:
            body = response.read().decode(errors="replace")
        if len(args) > 1 and args[1] not in body:
            raise RuntimeError(f"{args[0]} answered without {args[1]!r}")
    else:
        raise SystemExit(__doc__)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        check(argv)
    except Exception as exc:  # noqa: BLE001 — any failure means unhealthy; say why in `docker inspect`
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
