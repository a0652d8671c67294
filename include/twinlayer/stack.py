"""The embedded stack: Kafka, HBase + Thrift, Prometheus, Alertmanager, Pushgateway and Airflow as local processes.

There is no container engine on the machines twinlayer is developed and tested on, so the stack runs the real
services from Maven jars, Debian packages and the Python environment, under supervisord. supervisord owns the
processes (start, stop, restart on death, logs); this module renders their configuration, asks supervisord to act,
and decides when each service really answers — not merely when its process exists.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import shlex
import shutil
import socket
import string
import subprocess
import sys
import time
import uuid
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path

from twinlayer.config import PROJECT_ROOT, Settings
from twinlayer.spark import spark_home

TEMPLATES = Path(__file__).resolve().parent / "templates"
MONITORING = PROJECT_ROOT / "monitoring"

HBASE_JAVA17_OPTS = [
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.dns=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
]

DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
}


class StackError(RuntimeError):
    """A service of the stack could not be prepared, started or reached; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    check: Callable[[Settings], None]
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    start_timeout: float = 120.0
    priority: int = 100


# --- health checks: each returns quietly when the service answers, raises otherwise ---------------------------


def _http_ok(url: str, timeout: float = 3.0) -> bytes:
    import requests

    response = requests.get(url, timeout=timeout)
    if response.status_code != 200:
        raise StackError(f"{url} answered HTTP {response.status_code}")
    return response.content


def _port_open(settings: Settings, port: int, host: str | None = None) -> None:
    """Fails fast while nothing listens yet, before a client library's own (long) connection timeouts."""
    with socket.create_connection((host or settings.host, port), timeout=2):
        pass


def check_kafka(settings: Settings) -> None:
    from kafka import KafkaAdminClient

    _port_open(settings, settings.kafka_port, settings.host_of("kafka_port"))
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000,
                             client_id="twinlayer-health")
    try:
        cluster = admin.describe_cluster()
        if not cluster.get("brokers"):
            raise StackError("Kafka answered but reports no broker")
    finally:
        admin.close()


def check_hbase(settings: Settings) -> None:
    import happybase

    _port_open(settings, settings.thrift_port, settings.host_of("thrift_port"))
    connection = happybase.Connection(settings.host_of("thrift_port"), settings.thrift_port, timeout=5000, autoconnect=False)
    try:
        connection.open()
        connection.tables()
    finally:
        connection.close()


def check_prometheus(settings: Settings) -> None:
    _http_ok(f"{settings.url('prometheus_port')}/-/ready")


def check_alertmanager(settings: Settings) -> None:
    _http_ok(f"{settings.url('alertmanager_port')}/-/ready")


def check_pushgateway(settings: Settings) -> None:
    _http_ok(f"{settings.url('pushgateway_port')}/-/ready")


def check_airflow(settings: Settings) -> None:
    health = json.loads(_http_ok(f"{settings.url('airflow_port')}/api/v2/monitor/health"))
    unhealthy = [part for part, state in health.items() if isinstance(state, dict) and state.get("status") != "healthy"]
    if unhealthy:
        raise StackError(f"Airflow parts not healthy yet: {', '.join(sorted(unhealthy))}")


def check_speed_layer(settings: Settings) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    body = _http_ok(f"{settings.url('speed_metrics_port')}/metrics").decode()
    active = {s.labels.get("query"): s.value for f in text_string_to_metric_families(body) for s in f.samples
              if s.name == "twinlayer_speed_query_active"}
    idle = sorted(q for q in ("views", "archive", "dead_letters") if active.get(q) != 1.0)
    if idle:
        raise StackError(f"speed-layer queries not running: {', '.join(idle)}")


def check_serving(settings: Settings) -> None:
    _http_ok(f"{settings.url('serving_port')}/healthz")


def check_alert_log(settings: Settings) -> None:
    _http_ok(f"{settings.url('alert_log_port')}/healthz")


def check_listening(port_field: str) -> Callable[[Settings], None]:
    def check(settings: Settings) -> None:
        _port_open(settings, getattr(settings, port_field))

    return check


def check_process_only(settings: Settings) -> None:
    """For processes whose answer is checked through another service (the Airflow workers behind its health)."""


# What "answers" means for each part of the stack, independent of how the part was started (here, compose, a cluster).
PROBES: dict[str, Callable[[Settings], None]] = {
    "kafka": check_kafka,
    "hbase": check_hbase,
    "prometheus": check_prometheus,
    "alertmanager": check_alertmanager,
    "pushgateway": check_pushgateway,
    "airflow": check_airflow,
    "speed-layer": check_speed_layer,
    "serving": check_serving,
    "alert-log": check_alert_log,
}


# --- configuration --------------------------------------------------------------------------------------------


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise StackError("no java on PATH and no JAVA_HOME: install a JDK 17 (apt-get install openjdk-17-jre-headless)")
    return found


def _venv_bin(tool: str) -> str:
    return str(Path(sys.executable).parent / tool)


def _classpath(settings: Settings, part: str, *first: Path) -> str:
    jars = settings.jars_dir / part
    if not jars.is_dir() or not any(jars.glob("*.jar")):
        raise StackError(f"no jars in {jars}: run `make jars` (Maven fetches them from Maven Central)")
    return os.pathsep.join([*(str(p) for p in first), f"{jars}/*"])


def _jmx_agent(settings: Settings, port: int) -> str:
    agent = next((settings.jars_dir / "jmx").glob("jmx_prometheus_javaagent-*.jar"), None)
    if agent is None:
        raise StackError(f"no JMX exporter jar in {settings.jars_dir / 'jmx'}: run `make jars`")
    return f"-javaagent:{agent}={settings.host}:{port}:{settings.state_dir / 'conf' / 'jmx_exporter.yml'}"


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment shared by every Airflow process (and by tests that import Airflow in-process)."""
    home = settings.state_dir / "airflow"
    secret_file = home / "jwt_secret"
    if not secret_file.exists():
        home.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    base = f"http://{settings.host}:{settings.airflow_port}"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": settings.host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.logs_dir / "airflow"),
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "PYTHONPATH": str(PROJECT_ROOT / "include"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_HOME": spark_home(),
        "AIRFLOW_CONN_TWINLAYER_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
    }


def services(settings: Settings) -> list[Service]:
    java = _java()
    conf = settings.state_dir / "conf"
    log4j = f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}"
    hbase_conf = conf / "hbase"
    hbase_cp = _classpath(settings, "hbase", hbase_conf)
    af_env = airflow_env(settings)
    airflow = _venv_bin("airflow")
    return [
        Service(
            "kafka",
            [java, "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", log4j, _jmx_agent(settings, settings.kafka_jmx_port),
             "-cp", _classpath(settings, "kafka"), "kafka.Kafka", str(conf / "kafka.properties")],
            check_kafka, priority=10, start_timeout=90,
        ),
        Service(
            "hbase",
            [java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", *HBASE_JAVA17_OPTS, log4j,
             _jmx_agent(settings, settings.hbase_jmx_port), f"-Dhbase.log.dir={settings.logs_dir}",
             "-cp", hbase_cp, "org.apache.hadoop.hbase.master.HMaster", "start"],
            check_listening("zookeeper_port"), priority=10, start_timeout=90,
        ),
        Service(
            "hbase-thrift",
            [java, "-Xms128m", "-Xmx512m", *HBASE_JAVA17_OPTS, log4j, _jmx_agent(settings, settings.thrift_jmx_port),
             "-cp", hbase_cp, "org.apache.hadoop.hbase.thrift.ThriftServer",
             "-b", settings.host, "-p", str(settings.thrift_port), "start"],
            check_hbase, priority=20, start_timeout=150,
        ),
        Service(
            "prometheus",
            ["/usr/bin/prometheus", f"--config.file={conf / 'prometheus.yml'}",
             f"--storage.tsdb.path={settings.state_dir / 'prometheus'}",
             f"--web.listen-address={settings.host}:{settings.prometheus_port}", "--web.enable-lifecycle",
             "--storage.tsdb.retention.time=7d"],
            check_prometheus, priority=30, start_timeout=60,
        ),
        Service(
            "alertmanager",
            ["/usr/bin/prometheus-alertmanager",
             f"--config.file={MONITORING / 'alertmanager' / 'alertmanager.yml'}",
             f"--storage.path={settings.state_dir / 'alertmanager'}",
             f"--web.listen-address={settings.host}:{settings.alertmanager_port}", "--cluster.listen-address="],
            check_alertmanager, priority=30, start_timeout=60,
        ),
        Service(
            "pushgateway",
            ["/usr/bin/prometheus-pushgateway", f"--web.listen-address={settings.host}:{settings.pushgateway_port}",
             f"--persistence.file={settings.state_dir / 'pushgateway' / 'metrics'}"],
            check_pushgateway, priority=30, start_timeout=60,
        ),
        Service("speed-layer", [sys.executable, str(PROJECT_ROOT / "spark_jobs" / "speed_layer.py")],
                check_speed_layer, {"PYTHONPATH": str(PROJECT_ROOT / "include")}, 240, 60),
        Service("serving", [sys.executable, "-m", "uvicorn", "--factory", "twinlayer.api:create_app",
                            "--host", settings.host, "--port", str(settings.serving_port), "--no-access-log"],
                check_serving, {"PYTHONPATH": str(PROJECT_ROOT / "include")}, 60, 50),
        Service("alert-log", [sys.executable, "-m", "uvicorn", "--factory", "twinlayer.alert_log:create_app",
                              "--host", settings.host, "--port", str(settings.alert_log_port), "--no-access-log"],
                check_alert_log, {"PYTHONPATH": str(PROJECT_ROOT / "include")}, 60, 30),
        Service("airflow-api-server", [airflow, "api-server"], check_airflow, af_env, 150, 40),
        Service("airflow-scheduler", [airflow, "scheduler", "--skip-serve-logs"], check_process_only, af_env, 150, 40),
        Service("airflow-dag-processor", [airflow, "dag-processor"], check_process_only, af_env, 150, 40),
        Service("airflow-triggerer", [airflow, "triggerer", "--skip-serve-logs"], check_process_only, af_env, 150, 40),
    ]


def _render(template: str, settings: Settings, target: Path, **extra: object) -> None:
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    values.update(extra)
    text = string.Template((TEMPLATES / template).read_text()).substitute(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def _supervisord_conf(settings: Settings, svcs: list[Service]) -> str:
    def quote(arg: str) -> str:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"' if (" " in arg or not arg) else arg

    def env_line(env: dict[str, str]) -> str:
        return ",".join(f'{k}={shlex.quote(v).replace("%", "%%")}' for k, v in env.items())

    sock = settings.state_dir / "supervisor.sock"
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}
    lines = [
        "; Rendered by twinlayer.stack — edit the Python, not this file.",
        "[unix_http_server]", f"file={sock}", "chmod=0700", "",
        "[supervisord]", f"logfile={settings.logs_dir / 'supervisord.log'}", f"pidfile={settings.state_dir / 'supervisord.pid'}",
        f"directory={settings.state_dir}", "logfile_maxbytes=10MB", "logfile_backups=2", "loglevel=info",
        f"environment={env_line(base_env)}", "",
        "[rpcinterface:supervisor]", "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{sock}", "",
    ]
    for svc in svcs:
        lines += [
            f"[program:{svc.name}]",
            "command=" + " ".join(quote(a).replace("%", "%%") for a in svc.command),
            f"directory={settings.state_dir}",
            f"priority={svc.priority}",
            "autostart=false", "autorestart=true", "startsecs=3", "startretries=5",
            "stopasgroup=true", "killasgroup=true", "stopwaitsecs=30", "stopsignal=TERM",
            "redirect_stderr=true", f"stdout_logfile={settings.logs_dir / (svc.name + '.log')}",
            "stdout_logfile_maxbytes=20MB", "stdout_logfile_backups=2",
        ]
        if svc.env:
            lines.append(f"environment={env_line(svc.env)}")
        lines.append("")
    return "\n".join(lines)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kafka_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


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
            raise StackError(f"missing {', '.join(missing)}: run `make packages` (apt-get install {' '.join(packages)})")
        _java()
        for part in ("kafka", "hbase", "jmx"):
            _classpath(self.settings, part)

    def check_ports_free(self) -> None:
        """Before starting our own supervisord: every port the stack binds must be free."""
        s = self.settings
        taken = []
        for field in ("kafka_port", "kafka_controller_port", "zookeeper_port", "thrift_port", "prometheus_port",
                      "alertmanager_port", "pushgateway_port", "airflow_port", "speed_metrics_port",
                      "serving_port", "alert_log_port"):
            try:
                _port_open(s, getattr(s, field))
            except OSError:
                continue
            taken.append(f"{field.removesuffix('_port')} ({s.host}:{getattr(s, field)})")
        if taken:
            raise StackError("ports already in use: " + ", ".join(taken) + ". Is another twinlayer stack (or another "
                             "program) running? Stop it, or move this stack with TWINLAYER_<NAME>_PORT.")

    def prepare(self) -> list[Service]:
        self.check_prerequisites()
        if not self.supervisor_running():
            self.check_ports_free()
        s = self.settings
        for sub in ("logs", "logs/airflow", "conf/hbase", "kafka", "hbase", "prometheus", "alertmanager", "pushgateway",
                    "airflow"):
            (s.state_dir / sub).mkdir(parents=True, exist_ok=True)
        _render("kafka.properties", s, s.state_dir / "conf" / "kafka.properties")
        _render("log4j2.properties", s, s.state_dir / "conf" / "log4j2.properties")
        _render("hbase-site.xml", s, s.state_dir / "conf" / "hbase" / "hbase-site.xml")
        shutil.copy(TEMPLATES / "log4j2.properties", s.state_dir / "conf" / "hbase" / "log4j2.properties")
        shutil.copy(TEMPLATES / "jmx_exporter.yml", s.state_dir / "conf" / "jmx_exporter.yml")
        _render("prometheus.yml", s, s.state_dir / "conf" / "prometheus.yml", rules_dir=MONITORING / "prometheus" / "rules")
        svcs = self.services()
        (s.state_dir / "supervisord.conf").write_text(_supervisord_conf(s, svcs))
        self._format_kafka_storage(svcs[0].command[0])
        self._migrate_airflow()
        return svcs

    def _format_kafka_storage(self, java: str) -> None:
        data = self.settings.state_dir / "kafka" / "data"
        if (data / "meta.properties").exists():
            return
        cmd = [java, f"-Dlog4j2.configurationFile={self.settings.state_dir / 'conf' / 'log4j2.properties'}",
               "-cp", _classpath(self.settings, "kafka"), "kafka.tools.StorageTool", "format", "--standalone",
               "-t", kafka_cluster_id(), "-c", str(self.settings.state_dir / "conf" / "kafka.properties")]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def _migrate_airflow(self) -> None:
        marker = self.settings.state_dir / "airflow" / ".migrated"
        if marker.exists():
            return
        env = {**os.environ, **airflow_env(self.settings)}
        result = subprocess.run([_venv_bin("airflow"), "db", "migrate"], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise StackError(f"`airflow db migrate` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        marker.write_text("ok\n")

    # lifecycle -------------------------------------------------------------------------------------------
    def up(self, timeout: float | None = None) -> float:
        """Start every service and return once each answers; raises StackError naming the first that does not."""
        started = time.monotonic()
        svcs = self.prepare()
        if not self.supervisor_running():
            result = subprocess.run([_venv_bin("supervisord"), "-c", str(self.settings.state_dir / "supervisord.conf")],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise StackError(f"supervisord did not start: {result.stderr.strip() or result.stdout.strip()}")
            self._wait(lambda: self.supervisor_running(), 20, "supervisord")
        else:
            self._rpc().reloadConfig()
        rpc = self._rpc()
        states = self.process_info()
        for svc in svcs:
            if states.get(svc.name, {}).get("statename") not in ("RUNNING", "STARTING"):
                rpc.startProcess(svc.name, False)
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
                    if time.monotonic() > deadline[name] or state == "FATAL":
                        raise StackError(self._failure(name, last_error[name])) from None
                else:
                    del pending[name]
                    self.out(f"  {name:<22} up after {time.monotonic() - started:5.1f}s")
            if pending:
                time.sleep(1)
        return time.monotonic() - started

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
        self.stop(name)
        self.start(name)

    @staticmethod
    def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.3)
