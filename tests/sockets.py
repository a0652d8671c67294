"""Which addresses a process tree listens on (psutil), for the tests that hold every socket to loopback."""

from __future__ import annotations

import threading

import psutil

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def listening(processes) -> set[tuple[str, int, str]]:
    """(address, port, process name) of every listening TCP socket of ``processes`` and their descendants."""
    found = set()
    for proc in processes:
        try:
            tree = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for member in tree:
            try:
                for conn in member.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN:
                        found.add((conn.laddr.ip, conn.laddr.port, member.name()))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return found


def exposed(addresses) -> set[tuple[str, int, str]]:
    return {entry for entry in addresses if entry[0] not in LOOPBACK}


class ListeningSampler:
    """Samples, until stopped, the listening sockets of every process whose command line contains ``marker``."""

    def __init__(self, marker: str, period: float = 0.5) -> None:
        self.marker, self.period = marker, period
        self.seen: set[tuple[str, int, str]] = set()
        self.processes_seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            matching = []
            for proc in psutil.process_iter(["cmdline"]):
                if any(self.marker in arg for arg in proc.info["cmdline"] or []):
                    matching.append(proc)
            self.processes_seen = max(self.processes_seen, len(matching))
            self.seen |= listening(matching)
            self._stop.wait(self.period)

    def __enter__(self) -> ListeningSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
