"""The embedded stack: Kafka, HBase + Thrift, Prometheus, Alertmanager, Pushgateway and Airflow as local processes.

There is no container engine on the machines twinlayer is developed and tested on, so the stack runs the real
services from Maven jars, Debian packages and the Python environment, under supervisord. supervisord owns the
processes (start, stop, restart on death, logs); this module renders their configuration, asks supervisord to act,
and decides when each service really answers — not merely when its process exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path

from twinlayer.localstack import postgres
from twinlayer.localstack.services import (
    DEBIAN_PACKAGES,
    MONITORING,
    TEMPLATES,
    Service,
    StackError,
    airflow_env,
    classpath,
    find_java,
    kafka_cluster_id,
    kafka_format_command,
    local_layout,
    render,
    services,
    supervisord_conf,
    venv_bin,
)
from twinlayer.model.config import Settings, connection_specs
from twinlayer.ops.probes import port_open


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- control --------------------------------------------------------------------------------------------------


class Stack:
    """Prepare, start, watch and stop the embedded stack through supervisord."""

    def __init__(self, settings: Settings, out: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.out = out

    @property
    def socket_path(self) -> Path:
        return self.settings.state_dir / "supervisor.sock"

    def services(self) -> list[Service]:
        return services(self.settings)

    # supervisord -----------------------------------------------------------------------------------------
    def _rpc(self):
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def supervisor_running(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return self._rpc().getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return False

    def process_info(self) -> dict[str, dict]:
        if not self.supervisor_running():
            return {}
        return {info["name"]: info for info in self._rpc().getAllProcessInfo()}

    # preparation -----------------------------------------------------------------------------------------
    def check_prerequisites(self) -> None:
        missing = [tool for tool in DEBIAN_PACKAGES if not shutil.which(tool) and not Path("/usr/bin", tool).exists()]
        if missing:
            packages = sorted({DEBIAN_PACKAGES[m] for m in missing})
            raise StackError(
                f"missing {', '.join(missing)}: run `make packages` (apt-get install {' '.join(packages)})"
            )
        find_java()
        try:
            postgres.bin_dir()
            postgres.run_as()
        except postgres.PostgresError as exc:
            raise StackError(str(exc)) from None
        for part in ("kafka", "hbase", "jmx"):
            classpath(self.settings, part)

    def check_ports_free(self) -> None:
        """Before starting our own supervisord: every port the stack binds must be free."""
        s = self.settings
        taken = []
        for field in (
            "kafka_port",
            "kafka_controller_port",
            "zookeeper_port",
            "thrift_port",
            "prometheus_port",
            "alertmanager_port",
            "pushgateway_port",
            "airflow_port",
            "speed_metrics_port",
            "serving_port",
            "alert_log_port",
            "postgres_port",
        ):
            try:
                port_open(s, getattr(s, field))
            except OSError:
                continue
            taken.append(f"{field.removesuffix('_port')} ({s.host}:{getattr(s, field)})")
        if taken:
            raise StackError(
                "ports already in use: " + ", ".join(taken) + ". Is another twinlayer stack (or another "
                "program) running? Stop it, or move this stack with TWINLAYER_<NAME>_PORT."
            )

    def prepare(self) -> list[Service]:
        self.check_prerequisites()
        if not self.supervisor_running():
            self.check_ports_free()
        s = self.settings
        for sub in (
            "logs",
            "logs/airflow",
            "conf/hbase",
            "kafka",
            "hbase",
            "prometheus",
            "alertmanager",
            "pushgateway",
            "airflow",
        ):
            (s.state_dir / sub).mkdir(parents=True, exist_ok=True)
        render("kafka.properties", s, s.state_dir / "conf" / "kafka.properties")
        render("log4j2.properties", s, s.state_dir / "conf" / "log4j2.properties")
        render("hbase-site.xml", s, s.state_dir / "conf" / "hbase" / "hbase-site.xml")
        shutil.copy(TEMPLATES / "log4j2.properties", s.state_dir / "conf" / "hbase" / "log4j2.properties")
        for exporter in ("jmx_exporter.yml", "jmx_exporter_hbase.yml"):
            shutil.copy(TEMPLATES / exporter, s.state_dir / "conf" / exporter)
        render(
            "prometheus.yml", s, s.state_dir / "conf" / "prometheus.yml", rules_dir=MONITORING / "prometheus" / "rules"
        )
        svcs = self.services()
        conf = s.state_dir / "supervisord.conf"  # the programs' environments hold Airflow's secrets: owner only
        conf.touch(mode=0o600)
        conf.chmod(0o600)
        conf.write_text(supervisord_conf(s, svcs))
        self._format_kafka_storage()
        try:
            postgres.initialise(s)
        except postgres.PostgresError as exc:
            raise StackError(f"Airflow's metadata database: {exc}") from None
        return svcs

    def _format_kafka_storage(self) -> None:
        data = self.settings.state_dir / "kafka" / "data"
        if (data / "meta.properties").exists():
            return
        cmd = kafka_format_command(self.settings, local_layout(self.settings), kafka_cluster_id())
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def _migrate_airflow(self) -> None:
        """Airflow's schema in PostgreSQL (created on first start; ``db migrate`` once per state folder)."""
        marker = self.settings.state_dir / "airflow" / ".migrated-postgres"
        if marker.exists():
            return
        postgres.ensure_database(self.settings)
        env = {**os.environ, **airflow_env(self.settings)}
        result = subprocess.run([venv_bin("airflow"), "db", "migrate"], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise StackError(f"`airflow db migrate` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        marker.write_text("ok\n")

    # lifecycle -------------------------------------------------------------------------------------------
    def up(self, timeout: float | None = None) -> float:
        """Start every service and return once each answers; raises StackError naming the first that does not."""
        started = time.monotonic()
        svcs = self.prepare()
        if not self.supervisor_running():
            result = subprocess.run(
                [venv_bin("supervisord"), "-c", str(self.settings.state_dir / "supervisord.conf")],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise StackError(f"supervisord did not start: {result.stderr.strip() or result.stdout.strip()}")
            self._wait(self.supervisor_running, 20, "supervisord")
        else:
            self._rpc().reloadConfig()
        first = [svc for svc in svcs if svc.name == "postgres"]
        if first:  # Airflow's schema is migrated before any Airflow process starts
            self._start(first)
            self._await(first, started, timeout)
            self._migrate_airflow()
        rest = [svc for svc in svcs if svc not in first]
        self._start(rest)
        self._await(rest, started, timeout)
        if any(svc.name == "airflow-api-server" for svc in svcs):
            from twinlayer.localstack.airflow_api import AirflowClient

            AirflowClient.for_stack(self.settings).ensure_connections(connection_specs(self.settings))
        return time.monotonic() - started

    def _start(self, svcs: list[Service]) -> None:
        states = self.process_info()
        rpc = self._rpc()
        for svc in svcs:
            if svc.name not in states:
                raise StackError(
                    f"the running supervisord does not know {svc.name!r} (started by an older "
                    "twinlayer?): `make down`, then `make up`"
                )
            if states[svc.name].get("statename") not in ("RUNNING", "STARTING"):
                rpc.startProcess(svc.name, False)

    def _await(self, svcs: list[Service], started: float, timeout: float | None) -> None:
        """Wait until every service in ``svcs`` is running and answers its probe, each until its own deadline."""
        pending = {svc.name: svc for svc in svcs}
        deadline = {svc.name: started + (timeout or svc.start_timeout) for svc in svcs}
        last_error: dict[str, str] = {}
        while pending:
            info = self.process_info()
            for name, svc in list(pending.items()):
                state = info.get(name, {}).get("statename")
                if state in ("FATAL", "BACKOFF") and info[name].get("spawnerr"):
                    last_error[name] = info[name]["spawnerr"]
                try:
                    if state != "RUNNING":
                        raise StackError(f"process is {state}")
                    svc.check(self.settings)
                except Exception as exc:  # noqa: BLE001 — any failure of a probe means "not yet"
                    last_error[name] = f"{type(exc).__name__}: {exc}"
                    final = state == "EXITED" and info[name].get("exitstatus") in svc.final_exit_codes
                    if time.monotonic() > deadline[name] or state == "FATAL" or final:
                        raise StackError(self._failure(name, last_error[name])) from None
                else:
                    del pending[name]
                    self.out(f"  {name:<22} up after {time.monotonic() - started:5.1f}s")
            if pending:
                time.sleep(1)

    def _failure(self, name: str, reason: str) -> str:
        return f"{name} did not come up: {reason}\n--- last lines of {self.log_path(name)} ---\n{self.tail(name, 30)}"

    def log_path(self, name: str) -> Path:
        return self.settings.logs_dir / f"{name}.log"

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_path(name)
        if not path.exists():
            return "(no log yet)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def status(self) -> list[tuple[str, str, str]]:
        """(service, up|down, why) for every service."""
        info = self.process_info()
        rows = []
        for svc in self.services():
            proc = info.get(svc.name)
            if proc is None:
                rows.append((svc.name, "down", "supervisord is not running" if not info else "not configured"))
                continue
            if proc["statename"] != "RUNNING":
                rows.append((svc.name, "down", f"process {proc['statename']} {proc.get('spawnerr') or ''}".strip()))
                continue
            try:
                svc.check(self.settings)
            except Exception as exc:  # noqa: BLE001
                rows.append((svc.name, "down", f"pid {proc['pid']} runs but does not answer: {exc}"))
            else:
                rows.append((svc.name, "up", proc["description"]))
        return rows

    def healthy(self) -> bool:
        return bool(self.supervisor_running()) and all(state == "up" for _, state, _ in self.status())

    def down(self) -> None:
        if not self.supervisor_running():
            return
        pid_file = self.settings.state_dir / "supervisord.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        rpc = self._rpc()
        try:
            rpc.stopAllProcesses(True)
        finally:
            rpc.shutdown()
        self._wait(lambda: pid is None or not _alive(pid), 60, "supervisord to exit")

    def stop(self, name: str) -> None:
        """Stop one service; the supervisor keeps it stopped until ``start``."""
        self._rpc().stopProcess(name, True)

    def start(self, name: str) -> None:
        self._rpc().startProcess(name, True)

    def restart(self, name: str) -> None:
        if self.process_info().get(name, {}).get("statename") in ("RUNNING", "STARTING", "BACKOFF"):
            self.stop(name)
        self.start(name)

    def restart_supervised(self, name: str) -> bool:
        """Restart ``name`` if this stack's supervisor runs it; False where there is none (another deployment) and
        where the service stopped itself for a person to act (an exit code it declares final, its log says why)."""
        if not self.supervisor_running():
            return False
        info = self.process_info().get(name, {})
        final = next((svc.final_exit_codes for svc in self.services() if svc.name == name), ())
        if info.get("statename") == "EXITED" and info.get("exitstatus") in final:
            return False
        self.restart(name)
        return True

    @staticmethod
    def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.3)
