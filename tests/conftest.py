"""Session fixtures: the real embedded stack and one SparkSession.

The stack fixture reuses a stack that is already healthy (a developer's `make up`) and otherwise starts one and
stops it at the end of the session. Tests marked ``disruptive`` stop or kill services; they run last.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import psutil
import pytest
import requests

from twinlayer.localstack.stack import Stack
from twinlayer.model.config import PROJECT_ROOT, load_settings


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.fixture(scope="session")
def settings():
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings):
    stack = Stack(settings, out=lambda line: print(line, flush=True))
    started_here = not stack.healthy()
    if started_here:
        stack.up()
    try:
        yield stack
    finally:
        if started_here and not os.environ.get("TWINLAYER_KEEP_STACK"):
            stack.down()


@pytest.fixture(scope="session")
def spark(settings):
    from twinlayer.runtime.spark import build_session

    session = build_session("twinlayer-tests", settings)
    session.sparkContext.setLogLevel("WARN")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture
def unique_name(request):
    """A name no earlier run used, for topics and tables: tests never see each other's data."""
    return f"t_{request.node.name[:40].replace('[', '_').replace(']', '')}_{uuid.uuid4().hex[:8]}"


class SpeedLayerProcess:
    """The real speed-layer job (spark_jobs/speed_layer.py) as a child process with its own topic, table and dirs."""

    def __init__(
        self, settings, name: str, root, metrics_port: int, watermark: str = "10 seconds", max_versions: int = 5
    ):
        self.settings = settings
        self.topic, self.dlq_topic, self.table = f"{name}-events", f"{name}-dlq", f"{name}_speed".replace("-", "_")
        self.archive_dir, self.checkpoint_dir = root / "archive", root / "checkpoints"
        self.metrics_port = metrics_port
        self.log_path = root / "speed-layer.log"
        self.args = [
            sys.executable,
            str(PROJECT_ROOT / "spark_jobs" / "speed_layer.py"),
            "--topic",
            self.topic,
            "--dlq-topic",
            self.dlq_topic,
            "--table",
            self.table,
            "--archive-dir",
            str(self.archive_dir),
            "--checkpoint-dir",
            str(self.checkpoint_dir),
            "--metrics-port",
            str(metrics_port),
            "--watermark",
            watermark,
            "--table-max-versions",
            str(max_versions),
        ]
        self.process = None

    def start(self, *extra: str, wait: bool = True, env: dict[str, str] | None = None):
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [*self.args, *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "include"), **(env or {})},
            )
        if wait:
            self.wait_until(lambda m: self.queries_active(), 180, "queries to start")
        return self

    def metrics(self) -> dict:
        from prometheus_client.parser import text_string_to_metric_families

        body = requests.get(f"http://{self.settings.host}:{self.metrics_port}/metrics", timeout=2).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
        }

    def queries_active(self) -> bool:
        try:
            metrics = self.metrics()
        except requests.RequestException:
            return False
        return all(metrics.get(("twinlayer_speed_query_active", (("query", q),))) == 1.0 for q in ("views", "ingest"))

    def processed(self, query: str) -> float:
        return self.metrics().get(("twinlayer_speed_input_rows_total", (("query", query),)), 0.0)

    def wait_until(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"speed layer exited with {self.process.returncode} while waiting for {what}:\n" + self.log_tail()
                )
            try:
                if predicate(self.metrics()):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self, sig=signal.SIGKILL):
        if self.process and self.process.poll() is None:
            # the driver's JVM is a child of the Python process: kill the whole tree as a crash would
            parent = psutil.Process(self.process.pid)
            for proc in [parent, *parent.children(recursive=True)]:
                try:
                    proc.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
            self.process.wait(timeout=60)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def speed_layer(stack, settings, tmp_path, unique_name):
    started = []

    def make(**kwargs):
        port = _free_port()
        run = SpeedLayerProcess(settings, unique_name.replace("_", "-").lower(), tmp_path, port, **kwargs)
        started.append(run)
        return run

    try:
        yield make
    finally:
        for run in started:
            run.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def fault_figures(settings):
    """Record how long a fault lasted and how long recovery took: one JSON line per fault in
    ``state/reports/fault_suite.jsonl``, printed again at the end of the session (the README's Guarantees quote
    them)."""
    import json

    path = settings.state_dir / "reports" / "fault_suite.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)

    def record(fault: str, **figures) -> None:
        rounded = {k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}
        line = json.dumps({"fault": fault, **rounded})
        with path.open("a") as out:
            out.write(line + "\n")
        _FAULT_LINES.append(line)

    return record


_FAULT_LINES: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if _FAULT_LINES:
        terminalreporter.section("fault suite: recovery figures")
        for line in _FAULT_LINES:
            terminalreporter.write_line(line)
