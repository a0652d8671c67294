"""The docker-compose deployment, checked statically: no Docker engine runs where twinlayer is built and tested.

docker-compose.yml, docker/Dockerfile, .env.example, monitoring/prometheus/prometheus.docker.yml and the container
launcher are parsed and held against the project: its ports (twinlayer.model.config), the local stack's Prometheus jobs,
the files they mount. Each check is a function returning the problems it finds; the last tests feed each one a
broken copy and require it to complain, so none of them passes vacuously.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import re
import shutil
import string
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from twinlayer.localstack.services import MONITORING, TEMPLATES
from twinlayer.model.config import PROJECT_ROOT, Settings
from twinlayer.ops.probes import PROBES

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "docker" / "Dockerfile"
# planted for the compose file's own secret check to find
PLANTED_PASSWORD = "hunter2"  # pragma: allowlist secret
PLANTED_URL = f"postgresql+psycopg2://airflow:{PLANTED_PASSWORD}@postgres:5432/airflow"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
PROMETHEUS_DOCKER = MONITORING / "prometheus" / "prometheus.docker.yml"
STATSD_MAPPING = MONITORING / "statsd" / "mapping.yml"
DEFAULTS = Settings()
promtool = shutil.which("promtool") or "/usr/bin/promtool"

REQUIRED_SERVICES = {
    "kafka",
    "hbase",
    "hbase-thrift",
    "spark-master",
    "speed-layer",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "postgres",
    "prometheus",
    "alertmanager",
    "pushgateway",
    "grafana",
    "statsd-exporter",
    "serving",
    "alert-log",
}
# The Settings ports each of our services listens on inside its container.
PORT_FIELDS = {
    "kafka": ("kafka_port", "kafka_controller_port", "kafka_jmx_port"),
    "hbase": ("zookeeper_port", "hbase_master_port", "hbase_regionserver_port", "hbase_jmx_port"),
    "hbase-thrift": ("thrift_port", "thrift_jmx_port"),
    "speed-layer": ("speed_metrics_port",),
    "serving": ("serving_port",),
    "airflow-api-server": ("airflow_port",),
    "prometheus": ("prometheus_port",),
    "alertmanager": ("alertmanager_port",),
    "pushgateway": ("pushgateway_port",),
}
# .env variable → the setting that must take it.
SECRETS = {
    "POSTGRES_PASSWORD": ("postgres", "POSTGRES_PASSWORD"),
    "AIRFLOW_JWT_SECRET": ("airflow-api-server", "AIRFLOW__API_AUTH__JWT_SECRET"),
    "AIRFLOW_FERNET_KEY": ("airflow-api-server", "AIRFLOW__CORE__FERNET_KEY"),
    "GRAFANA_ADMIN_PASSWORD": ("grafana", "GF_SECURITY_ADMIN_PASSWORD"),
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$", re.IGNORECASE)
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
STATE_SHARERS = ("speed-layer", "spark-worker", "airflow-")


# --- loading ---------------------------------------------------------------------------------------------------


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def load_env_example() -> dict[str, str]:
    pairs = [
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return {key.strip(): value.strip() for key, value in pairs}


def local_prometheus() -> dict:
    """The embedded stack's Prometheus config with its ${...} placeholders filled from Settings() defaults."""
    values = {f.name: getattr(DEFAULTS, f.name) for f in dataclasses.fields(DEFAULTS)}
    values.update(host="local-host", rules_dir="/rules")
    return yaml.safe_load(string.Template((TEMPLATES / "prometheus.yml").read_text()).substitute(values))


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command_of(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(arg) for arg in command]


def flag(command: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in a command, None when absent."""
    for i, arg in enumerate(command):
        if arg == name and i + 1 < len(command):
            return command[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def listen_port(command: list[str], name: str) -> int | None:
    value = flag(command, name)
    return None if value is None else int(value.rsplit(":", 1)[-1])


def expected_ports(name: str) -> set[int]:
    return {getattr(DEFAULTS, field) for field in PORT_FIELDS[name]}


def strings_in(node) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(node, list):
        return [s for item in node for s in strings_in(item)]
    return [node] if isinstance(node, str) else []


# --- checks: each returns the problems it finds ------------------------------------------------------------------


def required_service_problems(compose: dict) -> list[str]:
    services = set(compose.get("services") or {})
    problems = [f"service {name} is missing" for name in sorted(REQUIRED_SERVICES - services)]
    if not any(name.startswith("spark-worker") for name in services):
        problems.append("no spark-worker service")
    return problems


def bind_mount_problems(compose: dict) -> list[str]:
    problems = []
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                kind, source = volume.get("type"), volume.get("source", "")
            else:
                source = volume.split(":", 1)[0]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            if kind == "bind":
                path = (COMPOSE_FILE.parent / source).resolve()
                if source.startswith(("/", "~")) or not path.is_relative_to(PROJECT_ROOT):
                    problems.append(f"{name}: bind mount {source} is outside the repository")
                elif not path.exists():
                    problems.append(f"{name}: bind-mounted {source} does not exist")
            elif source not in declared:
                problems.append(f"{name}: named volume {source} is not declared under volumes:")
    return problems


def image_problems(compose: dict) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            context = COMPOSE_FILE.parent / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if context.resolve() != PROJECT_ROOT or dockerfile != "docker/Dockerfile":
                problems.append(f"{name}: built from {context}/{dockerfile}, not docker/Dockerfile of the repository")
            if not (context / dockerfile).is_file():
                problems.append(f"{name}: {dockerfile} does not exist")
        image = service.get("image")
        if image is None:
            if build is None:
                problems.append(f"{name}: neither image nor build")
            continue
        problem = unpinned(image)
        if problem:
            problems.append(f"{name}: {problem}")
    return problems


def unpinned(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        return f"image {image} has no tag"
    if tag == "latest" or not re.search(r"\d", tag):
        return f"image {image} is not pinned to a version"
    return None


def healthcheck_problems(compose: dict) -> list[str]:
    problems = []
    fields = {f.name for f in dataclasses.fields(Settings)}
    for name, service in compose["services"].items():
        check = service.get("healthcheck") or {}
        test = check.get("test")
        if check.get("disable") or not test or test in (["NONE"], "NONE"):
            problems.append(f"{name}: no healthcheck")
            continue
        script = (
            next((i for i, arg in enumerate(test) if str(arg).endswith("healthcheck.py")), None)
            if isinstance(test, list)
            else None
        )
        if script is not None:
            kind, rest = test[script + 1], test[script + 2 :]
            if kind == "probe" and rest[0] not in PROBES:
                problems.append(f"{name}: healthcheck probes {rest[0]}, not one of twinlayer.ops.probes.PROBES")
            if kind == "tcp" and not set(rest[1:]) <= fields:
                problems.append(f"{name}: healthcheck names ports that are not Settings fields: {rest[1:]}")
    return problems


def published_port_problems(compose: dict) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                host_ip, container = port.get("host_ip"), int(port["target"])
            else:
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
                container = int(parts[-1].split("/")[0])
            if host_ip != "127.0.0.1":
                problems.append(f"{name}: port {port} is not bound to 127.0.0.1")
            if name in PORT_FIELDS and container not in expected_ports(name):
                problems.append(f"{name}: publishes container port {container}, not one of its Settings ports")
    return problems


def container_port_problems(compose: dict) -> list[str]:
    problems = []
    services = compose["services"]
    for name in PORT_FIELDS:
        if name not in services:
            problems.append(f"{name}: missing")
            continue
        service = services[name]
        exposed = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
        if exposed != expected_ports(name):
            problems.append(f"{name}: exposes {sorted(exposed)}, Settings say {sorted(expected_ports(name))}")
        command = command_of(service)
        for option in ("--port", "--web.listen-address"):
            port = listen_port(command, option)
            if port is not None and port not in expected_ports(name):
                problems.append(f"{name}: {option} {port} is not one of its Settings ports")
    api_port = env_of(services.get("airflow-api-server", {})).get("AIRFLOW__API__PORT")
    if api_port != str(DEFAULTS.airflow_port):
        problems.append(f"airflow-api-server: AIRFLOW__API__PORT {api_port}, Settings say {DEFAULTS.airflow_port}")
    for name, service in services.items():
        for key, value in env_of(service).items():
            field = key.removeprefix("TWINLAYER_").lower()
            if key.startswith("TWINLAYER_") and field.endswith("_port") and value != str(getattr(DEFAULTS, field)):
                problems.append(f"{name}: {key}={value} moves a port away from the project's default")
    alert_log = services.get("alert-log", {})
    command = command_of(alert_log)
    if alert_log.get("network_mode") != "service:alertmanager":
        problems.append("alert-log: does not share Alertmanager's network (network_mode: service:alertmanager)")
    # alertmanager.yml posts to 127.0.0.1 inside the shared namespace; other containers use alertmanager:<port>
    if (
        flag(command, "--host") not in ("127.0.0.1", "0.0.0.0")
        or listen_port(command, "--port") != DEFAULTS.alert_log_port
    ):
        problems.append(f"alert-log: must listen on loopback (or all interfaces) port {DEFAULTS.alert_log_port}")
    if env_of(services.get("airflow-scheduler", {})).get("TWINLAYER_ALERT_LOG_HOST") != "alertmanager":
        problems.append(
            "airflow-scheduler: TWINLAYER_ALERT_LOG_HOST must be alertmanager (whose network alert-log shares)"
        )
    return problems


def prometheus_problems(docker: dict, compose: dict) -> list[str]:
    problems = []
    local = {job["job_name"]: job for job in local_prometheus()["scrape_configs"]}
    jobs = {job["job_name"]: job for job in docker["scrape_configs"]}
    if set(jobs) != set(local) | {"airflow"}:
        problems.append(f"jobs {sorted(jobs)} are not the local jobs {sorted(local)} plus airflow")
    services = compose["services"]

    def target(job: dict) -> tuple[str, int]:
        [static] = job["static_configs"]
        [address] = static["targets"]
        host, port = address.rsplit(":", 1)
        return host, int(port)

    for name, job in jobs.items():
        host, port = target(job)
        exposed = {int(str(p).split("/")[0]) for p in services.get(host, {}).get("expose", [])}
        if port not in exposed:
            problems.append(f"job {name}: target {host}:{port} is not a port the compose service {host} exposes")
        if name in local:
            if port != target(local[name])[1]:
                problems.append(f"job {name}: port {port}, the local stack scrapes {target(local[name])[1]}")
            if job.get("honor_labels", False) != local[name].get("honor_labels", False):
                problems.append(f"job {name}: honor_labels differs from the local stack")
    if "airflow" in jobs:
        statsd = command_of(services.get("statsd-exporter", {}))
        if target(jobs["airflow"]) != ("statsd-exporter", listen_port(statsd, "--web.listen-address")):
            problems.append("job airflow does not scrape the statsd-exporter's web port")
    if docker.get("rule_files") != ["/etc/prometheus/rules/*.yml"]:
        problems.append(f"rule_files {docker.get('rule_files')} is not /etc/prometheus/rules/*.yml")
    [alerting] = docker["alerting"]["alertmanagers"]
    if alerting["static_configs"][0]["targets"] != [f"alertmanager:{DEFAULTS.alertmanager_port}"]:
        problems.append("alerts do not go to alertmanager on its Settings port")
    prometheus = services.get("prometheus", {})
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus.get("volumes", [])}
    config = flag(command_of(prometheus), "--config.file")
    if mounts.get(config) != "./monitoring/prometheus/prometheus.docker.yml":
        problems.append(f"prometheus: {config} is not monitoring/prometheus/prometheus.docker.yml")
    if mounts.get("/etc/prometheus/rules") != "./monitoring/prometheus/rules":
        problems.append("prometheus: monitoring/prometheus/rules is not mounted at /etc/prometheus/rules")
    return problems


def secret_problems(compose: dict, env_example: dict[str, str]) -> list[str]:
    problems = []
    referenced = {name for text in strings_in(compose) for name in REFERENCE.findall(text)}
    for name in sorted(referenced - set(env_example)):
        problems.append(f"${{{name}}} is not in .env.example")
    for name, value in env_example.items():
        if value:
            problems.append(f".env.example gives {name} a value: leave it empty, secrets go in .env only")
    for variable, (service, key) in SECRETS.items():
        value = env_of(compose["services"].get(service, {})).get(key, "")
        if not re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", value):
            problems.append(f"{service}: {key} must be ${{{variable}:?...}}, got {value!r}")
    reference = r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}"
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if key.endswith("_CONN"):
                password = re.search(r"://[^:/@]+:([^@]*)@", value)
                if password and not re.fullmatch(reference, password.group(1)):
                    problems.append(f"{name}: {key} carries a password that is not a ${{VAR:?...}} reference")
            elif SECRET_NAME.search(key) and not re.fullmatch(reference, value):
                problems.append(f"{name}: {key} is not a ${{VAR:?...}} reference")
    return problems


def dockerfile_problems(text: str) -> list[str]:
    problems, stages = [], set()
    froms = re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", text, re.MULTILINE | re.IGNORECASE)
    if not froms:
        problems.append("no FROM line")
    for image, alias in froms:
        if image not in stages:
            problem = unpinned(image)
            if problem:
                problems.append(f"FROM {problem}")
        if alias:
            stages.add(alias)
    images = [image for image, _ in froms]
    if not any(re.fullmatch(r"maven:3\.9\.\d+-eclipse-temurin-17", image) for image in images):
        problems.append("no Maven 3.9.x / Temurin 17 build stage")
    if not any(re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm", image) for image in images):
        problems.append("the runtime is not python 3.11 slim bookworm")
    for needed in (
        "-f jvm/pom.xml package",
        "openjdk-17-jre-headless",
        "-r requirements.txt -c constraints.txt",
        "-e .",
    ):
        if needed not in text:
            problems.append(f"the Dockerfile does not run {needed!r}")
    return problems


def spark_and_airflow_problems(compose: dict) -> list[str]:
    problems = []
    services = compose["services"]
    master_port = listen_port(command_of(services.get("spark-master", {})), "--port")
    master_url = f"spark://spark-master:{master_port}"
    speed = command_of(services.get("speed-layer", {}))
    if not speed or speed[0] != "spark-submit" or flag(speed, "--master") != master_url:
        problems.append(f"speed-layer is not spark-submit --master {master_url}")
    if flag(speed, "--jars") != "/opt/twinlayer/build/jars/spark/*.jar":
        problems.append("speed-layer does not pass the Kafka connector jars (build/jars/spark/*.jar)")
    application = speed[-1] if speed else ""
    if (
        not application.startswith("/opt/twinlayer/")
        or not (PROJECT_ROOT / application.removeprefix("/opt/twinlayer/")).is_file()
    ):
        problems.append(f"speed-layer application {application} is not a file of the repository")
    for name, service in services.items():
        if name.startswith("spark-worker") and command_of(service)[-1:] != [master_url]:
            problems.append(f"{name} does not join {master_url}")
    airflow = {name: env_of(service) for name, service in services.items() if name.startswith("airflow-")}
    if len({json.dumps(env, sort_keys=True) for env in airflow.values()}) != 1:
        problems.append("the Airflow components do not share one environment")
    statsd_port = listen_port(command_of(services.get("statsd-exporter", {})), "--statsd.listen-udp")
    for name, env in airflow.items():
        connection = json.loads(env.get("AIRFLOW_CONN_TWINLAYER_SPARK", "{}"))
        if (connection.get("conn_type"), f"{connection.get('host')}:{connection.get('port')}") != ("spark", master_url):
            problems.append(f"{name}: AIRFLOW_CONN_TWINLAYER_SPARK does not point at {master_url}")
        if env.get("AIRFLOW__CORE__EXECUTOR") != "LocalExecutor":
            problems.append(f"{name}: not the LocalExecutor")
        statsd = (
            env.get("AIRFLOW__METRICS__STATSD_ON"),
            env.get("AIRFLOW__METRICS__STATSD_HOST"),
            env.get("AIRFLOW__METRICS__STATSD_PORT"),
        )
        if statsd != ("True", "statsd-exporter", str(statsd_port)):
            problems.append(f"{name}: StatsD metrics do not go to statsd-exporter:{statsd_port}")
    return problems


def shared_state_problems(compose: dict) -> list[str]:
    """The archive and checkpoints: one named volume at TWINLAYER_STATE_DIR for the speed layer, Spark and Airflow."""
    problems, volumes = [], set()
    for name, service in compose["services"].items():
        if not name.startswith(STATE_SHARERS):
            continue
        state_dir = env_of(service).get("TWINLAYER_STATE_DIR")
        mounted = [v.split(":")[0] for v in service.get("volumes", []) if v.split(":")[1] == state_dir]
        if not state_dir or len(mounted) != 1:
            problems.append(f"{name}: no volume at its TWINLAYER_STATE_DIR ({state_dir})")
        volumes.update(mounted)
    if len(volumes) != 1:
        problems.append(f"the state is not one shared volume: {sorted(volumes)}")
    return problems


def promtool_config_problems(config: dict, tmp_path: Path) -> list[str]:
    """promtool checks that rule files exist: point rule_files at the repository's rules on a copy."""
    config = copy.deepcopy(config)
    config["rule_files"] = [
        str(MONITORING / "prometheus" / "rules" / Path(pattern).name) for pattern in config.get("rule_files", [])
    ]
    target = tmp_path / "prometheus.docker.yml"
    target.write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(target)], capture_output=True, text=True, timeout=120)
    return [] if result.returncode == 0 else [result.stdout + result.stderr]


# --- the deployment as committed ----------------------------------------------------------------------------------


def test_required_services_exist():
    assert required_service_problems(load_compose()) == []


def test_every_bind_mounted_path_exists_in_the_repository():
    assert bind_mount_problems(load_compose()) == []


def test_every_image_is_pinned_or_built_from_the_project_dockerfile():
    assert image_problems(load_compose()) == []


def test_every_service_has_a_healthcheck():
    assert healthcheck_problems(load_compose()) == []


def test_published_ports_bind_loopback_only():
    assert published_port_problems(load_compose()) == []


def test_container_ports_are_the_settings_defaults():
    assert container_port_problems(load_compose()) == []


def test_prometheus_scrapes_the_local_jobs_plus_airflow_by_service_name():
    assert prometheus_problems(yaml.safe_load(PROMETHEUS_DOCKER.read_text()), load_compose()) == []


def test_prometheus_docker_config_passes_promtool(tmp_path):
    assert promtool_config_problems(yaml.safe_load(PROMETHEUS_DOCKER.read_text()), tmp_path) == []


def test_secrets_come_from_env_and_env_example_declares_them_empty():
    assert secret_problems(load_compose(), load_env_example()) == []


def test_dockerfile_stages_are_pinned_and_build_like_the_makefile():
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_speed_layer_and_airflow_submit_to_the_spark_master():
    assert spark_and_airflow_problems(load_compose()) == []


def test_archive_and_checkpoints_live_on_one_shared_volume():
    assert shared_state_problems(load_compose()) == []


def test_launcher_renders_the_local_templates_with_container_names(tmp_path):
    spec = importlib.util.spec_from_file_location("twinlayer_docker_launch", PROJECT_ROOT / "docker" / "launch.py")
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    jars = tmp_path / "jars"
    (jars / "jmx").mkdir(parents=True)
    (jars / "jmx" / "jmx_prometheus_javaagent-1.0.1.jar").touch()
    for part in ("kafka", "hbase"):
        (jars / part).mkdir()
        (jars / part / f"{part}.jar").touch()
    (tmp_path / "conf" / "hbase").mkdir(parents=True)
    settings = dataclasses.replace(DEFAULTS, kafka_host="kafka", state_dir=tmp_path / "state", jars_dir=jars)

    kafka = launch.prepare_kafka(settings, tmp_path / "conf")
    props = dict(
        line.split("=", 1)
        for line in (tmp_path / "conf" / "kafka.properties").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert props["listeners"] == (
        f"PLAINTEXT://kafka:{DEFAULTS.kafka_port},CONTROLLER://kafka:{DEFAULTS.kafka_controller_port}"
    )
    assert props["advertised.listeners"] == f"PLAINTEXT://kafka:{DEFAULTS.kafka_port}"
    assert f"=0.0.0.0:{DEFAULTS.kafka_jmx_port}:" in " ".join(kafka)

    hbase = launch.prepare_hbase(settings, "hbase", tmp_path / "conf")
    assert (tmp_path / "conf" / "jmx_exporter_hbase.yml").exists()
    assert any(arg.startswith("-javaagent:") and arg.endswith("jmx_exporter_hbase.yml") for arg in hbase)
    thrift = launch.prepare_hbase(settings, "hbase-thrift", tmp_path / "conf")
    assert any(arg.startswith("-javaagent:") and arg.endswith("/jmx_exporter.yml") for arg in thrift)
    site = {}
    for prop in ET.parse(tmp_path / "conf" / "hbase" / "hbase-site.xml").getroot():
        site[prop.findtext("name")] = prop.findtext("value")  # the last definition wins, as in Hadoop
    assert site["hbase.zookeeper.quorum"] == launch.HBASE_HOST == "hbase"
    assert site["hbase.zookeeper.property.clientPortAddress"] == "0.0.0.0"
    assert thrift[-5:] == ["-b", "0.0.0.0", "-p", str(DEFAULTS.thrift_port), "start"]
    assert f"=0.0.0.0:{DEFAULTS.thrift_jmx_port}:" in " ".join(thrift)


def test_statsd_mapping_labels_refer_to_matched_wildcards():
    mapping = yaml.safe_load(STATSD_MAPPING.read_text())
    assert mapping["mappings"]
    for rule in mapping["mappings"]:
        wildcards = rule["match"].count("*")
        used = [
            int(n)
            for text in (rule["name"], *map(str, (rule.get("labels") or {}).values()))
            for n in re.findall(r"\$(\d+)", text)
        ]
        assert max(used, default=0) <= wildcards, rule
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", re.sub(r"\$\d+", "x", rule["name"])), rule


# --- every check complains about a broken copy ----------------------------------------------------------------


def _services(compose: dict) -> dict:
    return compose["services"]


MUTATIONS = {
    "required service missing": (lambda c: _services(c).pop("alert-log"), required_service_problems),
    "no spark worker": (lambda c: _services(c).pop("spark-worker"), required_service_problems),
    "mount of a missing file": (
        lambda c: _services(c)["prometheus"]["volumes"].__setitem__(0, "./monitoring/missing.yml:/etc/p.yml:ro"),
        bind_mount_problems,
    ),
    "latest image": (lambda c: _services(c)["grafana"].__setitem__("image", "grafana/grafana:latest"), image_problems),
    "untagged image": (lambda c: _services(c)["postgres"].__setitem__("image", "postgres"), image_problems),
    "other Dockerfile": (
        lambda c: _services(c)["kafka"].__setitem__("build", {"context": ".", "dockerfile": "Dockerfile"}),
        image_problems,
    ),
    "no healthcheck": (lambda c: _services(c)["pushgateway"].pop("healthcheck"), healthcheck_problems),
    "unknown probe": (
        lambda c: _services(c)["kafka"]["healthcheck"].__setitem__(
            "test", ["CMD", "python", "/opt/twinlayer/docker/healthcheck.py", "probe", "zookeeper"]
        ),
        healthcheck_problems,
    ),
    "port on every interface": (
        lambda c: _services(c)["prometheus"].__setitem__("ports", ["19090:19090"]),
        published_port_problems,
    ),
    "published port off the settings": (
        lambda c: _services(c)["serving"].__setitem__("ports", ["127.0.0.1:8001:8001"]),
        published_port_problems,
    ),
    "serving on another port": (
        lambda c: _services(c)["serving"].__setitem__("command", ["uvicorn", "--port", "8001"]),
        container_port_problems,
    ),
    "exposed port off the settings": (
        lambda c: _services(c)["kafka"].__setitem__("expose", ["9093"]),
        container_port_problems,
    ),
    "alert log on its own network": (lambda c: _services(c)["alert-log"].pop("network_mode"), container_port_problems),
    "literal secret": (
        lambda c: _services(c)["postgres"]["environment"].__setitem__("POSTGRES_PASSWORD", PLANTED_PASSWORD),
        secret_problems,
    ),
    "literal database password": (
        lambda c: _services(c)["airflow-scheduler"].__setitem__(
            "environment",
            {
                **_services(c)["airflow-scheduler"]["environment"],
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": PLANTED_URL,
            },
        ),
        secret_problems,
    ),
    "secret without :?": (
        lambda c: _services(c)["grafana"]["environment"].__setitem__(
            "GF_SECURITY_ADMIN_PASSWORD", "${GRAFANA_ADMIN_PASSWORD}"
        ),
        secret_problems,
    ),
    "variable not in .env.example": (
        lambda c: _services(c)["grafana"]["environment"].__setitem__("GF_SMTP_PASSWORD", "${SMTP_PASSWORD:?set it}"),
        secret_problems,
    ),
    "speed layer on a local master": (
        lambda c: _services(c)["speed-layer"].__setitem__(
            "command", ["spark-submit", "--master", "local[2]", "/opt/twinlayer/spark_jobs/speed_layer.py"]
        ),
        spark_and_airflow_problems,
    ),
    "Airflow's Spark elsewhere": (
        lambda c: _services(c)["airflow-scheduler"].__setitem__(
            "environment",
            {
                **_services(c)["airflow-scheduler"]["environment"],
                "AIRFLOW_CONN_TWINLAYER_SPARK": '{"conn_type": "spark", "host": "local[2]"}',
            },
        ),
        spark_and_airflow_problems,
    ),
    "worker without the archive": (
        lambda c: _services(c)["spark-worker"].__setitem__("volumes", []),
        shared_state_problems,
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_compose_checks_catch_a_broken_copy(mutation):
    mutate, check = MUTATIONS[mutation]
    compose = copy.deepcopy(load_compose())
    mutate(compose)
    if check is secret_problems:
        assert check(compose, load_env_example())
    else:
        assert check(compose)


def test_secret_check_catches_a_value_in_env_example():
    assert secret_problems(load_compose(), {**load_env_example(), "POSTGRES_PASSWORD": PLANTED_PASSWORD})


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d["scrape_configs"].pop(), "a job is missing"),
        (
            lambda d: d["scrape_configs"][3]["static_configs"][0].__setitem__("targets", ["speed-layer:9999"]),
            "wrong port",
        ),
        (lambda d: d["scrape_configs"][2].pop("honor_labels"), "pushgateway without honor_labels"),
        (lambda d: d.__setitem__("rule_files", ["/etc/prometheus/*.yml"]), "rules elsewhere"),
    ],
)
def test_prometheus_check_catches_a_broken_copy(mutate, why):
    docker = yaml.safe_load(PROMETHEUS_DOCKER.read_text())
    mutate(docker)
    assert prometheus_problems(docker, load_compose()), why


def test_promtool_check_catches_a_broken_copy(tmp_path):
    docker = yaml.safe_load(PROMETHEUS_DOCKER.read_text())
    docker["scrape_configs"].append(dict(docker["scrape_configs"][0]))  # a duplicate job name
    assert promtool_config_problems(docker, tmp_path)


@pytest.mark.parametrize(
    "broken",
    [
        ("FROM python:3.11.11-slim-bookworm", "FROM python:latest"),
        ("FROM maven:3.9.9-eclipse-temurin-17 AS jars", "FROM maven AS jars"),
        ("-r requirements.txt -c constraints.txt", "-r requirements.txt"),
    ],
)
def test_dockerfile_check_catches_a_broken_copy(broken):
    text = DOCKERFILE.read_text()
    assert broken[0] in text
    assert dockerfile_problems(text.replace(broken[0], broken[1]))
