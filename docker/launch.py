"""Start a JVM service of twinlayer inside its container: kafka, hbase or hbase-thrift.

    python /opt/twinlayer/docker/launch.py kafka|hbase|hbase-thrift

Renders the same templates as the embedded stack (include/twinlayer/templates) with the container's names, adds the
few compose-only overrides listed in COMPOSE_OVERRIDES, then replaces itself with the JVM (same classpath, heap,
JMX exporter agent and options as twinlayer.stack). Ports and folders come from twinlayer.config (TWINLAYER_*).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from twinlayer.config import Settings, load_settings
from twinlayer.stack import HBASE_JAVA17_OPTS, TEMPLATES, _render, kafka_cluster_id

CONF_DIR = Path(os.environ.get("TWINLAYER_CONF_DIR", "/tmp/twinlayer/conf"))
HBASE_HOST = os.environ.get("HBASE_HOST", "hbase")  # the container of the HBase master, region server and ZooKeeper

# What a container needs beyond the local template. The standalone ZooKeeper of HBase binds loopback unless told
# otherwise; the Thrift server runs in its own container and must reach it.
COMPOSE_OVERRIDES = {
    "hbase-site.xml": {"hbase.zookeeper.property.clientPortAddress": "0.0.0.0"},
}


def render(template: str, settings: Settings, target: Path) -> Path:
    _render(template, settings, target)
    overrides = COMPOSE_OVERRIDES.get(template)
    if overrides:
        text = target.read_text()
        props = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n" for k, v in overrides.items())
        marker = "  <!-- docker-compose (docker/launch.py) -->\n"
        text = text.replace("</configuration>", marker + props + "</configuration>")
        target.write_text(text)
    return target


def jmx_agent(settings: Settings, port: int, conf: Path) -> str:
    agent = next((settings.jars_dir / "jmx").glob("jmx_prometheus_javaagent-*.jar"))
    return f"-javaagent:{agent}=0.0.0.0:{port}:{conf / 'jmx_exporter.yml'}"


def kafka_command(settings: Settings, conf: Path = CONF_DIR) -> list[str]:
    """Listeners and the advertised address are the service name (TWINLAYER_KAFKA_HOST) other containers use."""
    named = dataclasses.replace(settings, host=settings.host_of("kafka_port"))
    render("kafka.properties", named, conf / "kafka.properties")
    render("log4j2.properties", named, conf / "log4j2.properties")
    shutil.copy(TEMPLATES / "jmx_exporter.yml", conf / "jmx_exporter.yml")
    return ["java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
            jmx_agent(settings, settings.kafka_jmx_port, conf), "-cp", f"{settings.jars_dir / 'kafka'}/*",
            "kafka.Kafka", str(conf / "kafka.properties")]


def format_kafka_storage(settings: Settings, conf: Path = CONF_DIR) -> None:
    if (settings.state_dir / "kafka" / "data" / "meta.properties").exists():
        return
    cluster_id = os.environ.get("KAFKA_CLUSTER_ID") or kafka_cluster_id()
    subprocess.run(["java", f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}", "-cp",
                    f"{settings.jars_dir / 'kafka'}/*", "kafka.tools.StorageTool", "format", "--standalone",
                    "-t", cluster_id, "-c", str(conf / "kafka.properties")], check=True)


def hbase_command(settings: Settings, role: str, conf: Path = CONF_DIR) -> list[str]:
    """Both HBase containers read the same hbase-site.xml: ZooKeeper, master and region server live in HBASE_HOST."""
    named = dataclasses.replace(settings, host=HBASE_HOST)
    render("hbase-site.xml", named, conf / "hbase" / "hbase-site.xml")
    render("log4j2.properties", named, conf / "log4j2.properties")
    shutil.copy(TEMPLATES / "log4j2.properties", conf / "hbase" / "log4j2.properties")
    shutil.copy(TEMPLATES / "jmx_exporter.yml", conf / "jmx_exporter.yml")
    classpath = f"{conf / 'hbase'}{os.pathsep}{settings.jars_dir / 'hbase'}/*"
    log4j = f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}"
    if role == "hbase":
        return ["java", "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", *HBASE_JAVA17_OPTS, log4j,
                jmx_agent(settings, settings.hbase_jmx_port, conf), f"-Dhbase.log.dir={settings.logs_dir}",
                "-cp", classpath, "org.apache.hadoop.hbase.master.HMaster", "start"]
    return ["java", "-Xms128m", "-Xmx512m", *HBASE_JAVA17_OPTS, log4j,
            jmx_agent(settings, settings.thrift_jmx_port, conf), "-cp", classpath,
            "org.apache.hadoop.hbase.thrift.ThriftServer", "-b", "0.0.0.0", "-p", str(settings.thrift_port), "start"]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("kafka", "hbase", "hbase-thrift"):
        print(__doc__, file=sys.stderr)
        return 2
    settings = load_settings()
    (CONF_DIR / "hbase").mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    if argv[0] == "kafka":
        command = kafka_command(settings)
        format_kafka_storage(settings)
    else:
        command = hbase_command(settings, argv[0])
    sys.stdout.flush()
    os.execvp(command[0], command)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
