"""What the embedded stack runs: each service's command line, environment and probe, and the files rendered for them.

The JVM services' command lines are built here once, for the embedded stack and for the containers of the compose
deployment alike (``docker/launch.py``); they differ only in where the configuration lives and which address the
JMX exporters and the Thrift gateway listen on (``JvmLayout``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import shutil
import string
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from twinlayer.localstack import postgres
from twinlayer.localstack.secret_files import owner_only
from twinlayer.model.config import PROJECT_ROOT, Settings
from twinlayer.ops.probes import (
    check_airflow,
    check_alert_log,
    check_alertmanager,
    check_hbase,
    check_kafka,
    check_listening,
    check_process_only,
    check_prometheus,
    check_pushgateway,
    check_serving,
    check_speed_layer,
)
from twinlayer.runtime.spark import spark_home
from twinlayer.speed import NEEDS_OPERATOR

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
    user: str | None = None  # the system user supervisord runs it as (default: the stack's own)
    stop_signal: str = "TERM"
    # exit codes that mean "a person must act" (the process said why in its log): supervisord leaves it stopped
    # instead of restarting it into the same refusal
    final_exit_codes: tuple[int, ...] = ()
    nice: int = 0  # BACKGROUND for work that may wait for a core (see there)


# The speed layer and Airflow's scheduler, DAG processor and triggerer (and the tasks and Spark jobs they start, which
# inherit it) yield a busy core to the serving path (serving, HBase, its Thrift server) and to Kafka: on two shared
# cores a query otherwise waits behind a micro-batch. Serving at 50 q/s during 5k events/s ingest: p99 59-153 ms at
# equal priority, 29-31 ms with this; the speed layer's freshness at 10k events/s is unchanged. A positive niceness
# needs no privilege.
BACKGROUND = 10


# --- configuration --------------------------------------------------------------------------------------------


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise StackError("no java on PATH and no JAVA_HOME: install a JDK 17 (apt-get install openjdk-17-jre-headless)")
    return found


def venv_bin(tool: str) -> str:
    return str(Path(sys.executable).parent / tool)


def classpath(settings: Settings, part: str, *first: Path) -> str:
    jars = settings.jars_dir / part
    if not jars.is_dir() or not any(jars.glob("*.jar")):
        raise StackError(f"no jars in {jars}: run `make jars` (Maven fetches them from Maven Central)")
    return os.pathsep.join([*(str(p) for p in first), f"{jars}/*"])


@dataclasses.dataclass(frozen=True)
class JvmLayout:
    """Where a JVM service finds its java and rendered configuration, and the address its JMX exporter (and the
    Thrift gateway) listens on: loopback on the embedded stack, every interface inside a container."""

    java: str
    conf: Path
    bind: str

    @property
    def log4j(self) -> str:
        return f"-Dlog4j2.configurationFile={self.conf / 'log4j2.properties'}"


def jmx_agent(settings: Settings, port: int, layout: JvmLayout, config: str = "jmx_exporter.yml") -> str:
    agent = next((settings.jars_dir / "jmx").glob("jmx_prometheus_javaagent-*.jar"), None)
    if agent is None:
        raise StackError(f"no JMX exporter jar in {settings.jars_dir / 'jmx'}: run `make jars`")
    return f"-javaagent:{agent}={layout.bind}:{port}:{layout.conf / config}"


def kafka_command(settings: Settings, layout: JvmLayout) -> list[str]:
    return [
        layout.java,
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        layout.log4j,
        jmx_agent(settings, settings.kafka_jmx_port, layout),
        "-cp",
        classpath(settings, "kafka"),
        "kafka.Kafka",
        str(layout.conf / "kafka.properties"),
    ]


def kafka_format_command(settings: Settings, layout: JvmLayout, cluster_id: str) -> list[str]:
    return [
        layout.java,
        layout.log4j,
        "-cp",
        classpath(settings, "kafka"),
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "-t",
        cluster_id,
        "-c",
        str(layout.conf / "kafka.properties"),
    ]


def hbase_command(settings: Settings, layout: JvmLayout) -> list[str]:
    """ZooKeeper, master and region server in one JVM (HBase standalone)."""
    return [
        layout.java,
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        *HBASE_JAVA17_OPTS,
        layout.log4j,
        jmx_agent(settings, settings.hbase_jmx_port, layout, "jmx_exporter_hbase.yml"),
        f"-Dhbase.log.dir={settings.logs_dir}",
        "-cp",
        classpath(settings, "hbase", layout.conf / "hbase"),
        "org.apache.hadoop.hbase.master.HMaster",
        "start",
    ]


def thrift_command(settings: Settings, layout: JvmLayout) -> list[str]:
    return [
        layout.java,
        "-Xms128m",
        "-Xmx512m",
        *HBASE_JAVA17_OPTS,
        layout.log4j,
        jmx_agent(settings, settings.thrift_jmx_port, layout),
        "-cp",
        classpath(settings, "hbase", layout.conf / "hbase"),
        "org.apache.hadoop.hbase.thrift.ThriftServer",
        "-b",
        layout.bind,
        "-p",
        str(settings.thrift_port),
        "start",
    ]


AIRFLOW_USER = "admin"
AIRFLOW_USERS = {AIRFLOW_USER: "admin", "viewer": "viewer"}  # simple auth manager: user -> role


def airflow_passwords_file(settings: Settings) -> Path:
    """The simple auth manager's passwords of the Airflow users, each generated once (mode 0600)."""
    path = owner_only(settings.state_dir / "airflow" / "passwords.json", lambda: "{}\n")
    passwords = json.loads(path.read_text())
    if missing := [user for user in AIRFLOW_USERS if user not in passwords]:
        path.write_text(json.dumps({**passwords, **{user: secrets.token_urlsafe(18) for user in missing}}) + "\n")
    return path


def airflow_login(settings: Settings, user: str = AIRFLOW_USER) -> tuple[str, str]:
    """(user, password) of the embedded stack's Airflow: the UI asks for them, the project's client logs in (as
    the admin unless ``user`` says otherwise: ``viewer`` may read, not act)."""
    return user, json.loads(airflow_passwords_file(settings).read_text())[user]


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment shared by every Airflow process (and by tests that import Airflow in-process)."""
    home = settings.state_dir / "airflow"
    secret_file = owner_only(home / "jwt_secret", lambda: secrets.token_urlsafe(32))
    base = f"http://{settings.host}:{settings.airflow_port}"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in AIRFLOW_USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_passwords_file(settings)),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.sqlalchemy_url(settings),
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
        # the batch job's driver and block manager, started by spark-submit from a task, bind this address (Spark's
        # default is the machine's first non-loopback interface)
        "SPARK_LOCAL_IP": settings.host,
    }


def local_layout(settings: Settings) -> JvmLayout:
    return JvmLayout(find_java(), settings.state_dir / "conf", settings.host)


def services(settings: Settings) -> list[Service]:
    layout = local_layout(settings)
    conf = layout.conf
    af_env = airflow_env(settings)
    airflow = venv_bin("airflow")
    return [
        Service(
            "postgres",
            postgres.command(settings),
            postgres.check_postgres,
            priority=5,
            start_timeout=60,
            user=postgres.run_as(),
            stop_signal="INT",
        ),  # SIGINT: PostgreSQL's fast shutdown
        Service("kafka", kafka_command(settings, layout), check_kafka, priority=10, start_timeout=90),
        Service(
            "hbase", hbase_command(settings, layout), check_listening("zookeeper_port"), priority=10, start_timeout=90
        ),
        Service("hbase-thrift", thrift_command(settings, layout), check_hbase, priority=20, start_timeout=150),
        Service(
            "prometheus",
            [
                "/usr/bin/prometheus",
                f"--config.file={conf / 'prometheus.yml'}",
                f"--storage.tsdb.path={settings.state_dir / 'prometheus'}",
                f"--web.listen-address={settings.host}:{settings.prometheus_port}",
                "--storage.tsdb.retention.time=7d",
            ],
            check_prometheus,
            priority=30,
            start_timeout=60,
        ),
        Service(
            "alertmanager",
            [
                "/usr/bin/prometheus-alertmanager",
                f"--config.file={MONITORING / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={settings.state_dir / 'alertmanager'}",
                f"--web.listen-address={settings.host}:{settings.alertmanager_port}",
                "--cluster.listen-address=",
            ],
            check_alertmanager,
            priority=30,
            start_timeout=60,
        ),
        Service(
            "pushgateway",
            [
                "/usr/bin/prometheus-pushgateway",
                f"--web.listen-address={settings.host}:{settings.pushgateway_port}",
                f"--persistence.file={settings.state_dir / 'pushgateway' / 'metrics'}",
            ],
            check_pushgateway,
            priority=30,
            start_timeout=60,
        ),
        Service(
            "speed-layer",
            [sys.executable, str(PROJECT_ROOT / "spark_jobs" / "speed_layer.py")],
            check_speed_layer,
            {"PYTHONPATH": str(PROJECT_ROOT / "include")},
            240,
            60,
            final_exit_codes=(NEEDS_OPERATOR,),
            nice=BACKGROUND,
        ),
        Service(
            "serving",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "twinlayer.serving.api:create_app",
                "--host",
                settings.host,
                "--port",
                str(settings.serving_port),
                "--no-access-log",
            ],
            check_serving,
            {"PYTHONPATH": str(PROJECT_ROOT / "include")},
            60,
            50,
        ),
        Service(
            "alert-log",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "twinlayer.ops.alert_log:create_app",
                "--host",
                settings.host,
                "--port",
                str(settings.alert_log_port),
                "--no-access-log",
            ],
            check_alert_log,
            {"PYTHONPATH": str(PROJECT_ROOT / "include")},
            60,
            30,
        ),
        Service("airflow-api-server", [airflow, "api-server"], check_airflow, af_env, 150, 40),
        Service(
            "airflow-scheduler",
            [airflow, "scheduler", "--skip-serve-logs"],
            check_process_only,
            af_env,
            150,
            40,
            nice=BACKGROUND,
        ),
        Service(
            "airflow-dag-processor", [airflow, "dag-processor"], check_process_only, af_env, 150, 40, nice=BACKGROUND
        ),
        Service(
            "airflow-triggerer",
            [airflow, "triggerer", "--skip-serve-logs"],
            check_process_only,
            af_env,
            150,
            40,
            nice=BACKGROUND,
        ),
    ]


def render(template: str, settings: Settings, target: Path, **extra: object) -> None:
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    values.update(extra)
    text = string.Template((TEMPLATES / template).read_text()).substitute(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def niced(svc: Service) -> list[str]:
    """The service's command line, under ``nice`` when it runs at a lower priority (nice execs it: same pid)."""
    return ["nice", "-n", str(svc.nice), *svc.command] if svc.nice else svc.command


def supervisord_conf(settings: Settings, svcs: list[Service]) -> str:
    def quote(arg: str) -> str:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"' if (" " in arg or not arg) else arg

    def env_value(key: str, value: str) -> str:
        # supervisord's parser splits bare values on characters such as @ and has no escapes inside quotes; it
        # strips every quote at either end of a value
        mark = next((m for m in ("'", '"') if m not in value), None)
        if mark is None or value.startswith(("'", '"')) or value.endswith(("'", '"')):
            raise ValueError(f"environment value of {key} cannot be written for supervisord: {value!r}")
        return mark + value + mark

    def env_line(env: dict[str, str]) -> str:
        return ",".join(f"{k}={env_value(k, v)}".replace("%", "%%") for k, v in env.items())

    sock = settings.state_dir / "supervisor.sock"
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}
    lines = [
        "; Rendered by twinlayer.localstack — edit the Python, not this file.",
        "[unix_http_server]",
        f"file={sock}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={settings.logs_dir / 'supervisord.log'}",
        f"pidfile={settings.state_dir / 'supervisord.pid'}",
        f"directory={settings.state_dir}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        "loglevel=info",
        f"environment={env_line(base_env)}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{sock}",
        "",
    ]
    for svc in svcs:
        lines += [
            f"[program:{svc.name}]",
            "command=" + " ".join(quote(a).replace("%", "%%") for a in niced(svc)),
            f"directory={settings.state_dir}",
            f"priority={svc.priority}",
            "autostart=false",
            *(
                ["autorestart=unexpected", f"exitcodes={','.join(map(str, svc.final_exit_codes))}"]
                if svc.final_exit_codes
                else ["autorestart=true"]
            ),
            "startsecs=3",
            "startretries=5",
            "stopasgroup=true",
            "killasgroup=true",
            "stopwaitsecs=30",
            f"stopsignal={svc.stop_signal}",
            "redirect_stderr=true",
            f"stdout_logfile={settings.logs_dir / (svc.name + '.log')}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
        ]
        if svc.env:
            lines.append(f"environment={env_line(svc.env)}")
        if svc.user:
            lines.append(f"user={svc.user}")
        lines.append("")
    return "\n".join(lines)


def kafka_cluster_id() -> str:
    """A random cluster id as Kafka spells them; never one starting with '-', which its tools read as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id
