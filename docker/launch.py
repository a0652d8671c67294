"""Start a JVM service of twinlayer inside its container: kafka, hbase or hbase-thrift.

    python /opt/twinlayer/docker/launch.py kafka|hbase|hbase-thrift

Renders the same templates as the embedded stack (``twinlayer.localstack.services.render``) with the container's
names, adds the few compose-only overrides listed in COMPOSE_OVERRIDES, then replaces itself with the JVM built by
the same command builders as the embedded stack's, listening on every interface of the container. Ports and folders
come from twinlayer.model.config (TWINLAYER_*).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from twinlayer.localstack.services import (
    TEMPLATES,
    JvmLayout,
    hbase_command,
    kafka_cluster_id,
    kafka_command,
    kafka_format_command,
    render,
    thrift_command,
)
from twinlayer.model.config import Settings, load_settings

CONF_DIR = Path(os.environ.get("TWINLAYER_CONF_DIR", "/tmp/twinlayer/conf"))
HBASE_HOST = os.environ.get("HBASE_HOST", "hbase")  # the container of the HBase master, region server and ZooKeeper

# What a container needs beyond the local template. The standalone ZooKeeper of HBase binds loopback unless told
# otherwise; the Thrift server runs in its own container and must reach it.
COMPOSE_OVERRIDES = {
    "hbase-site.xml": {"hbase.zookeeper.property.clientPortAddress": "0.0.0.0"},
}


def container_layout(conf: Path) -> JvmLayout:
    return JvmLayout(java="java", conf=conf, bind="0.0.0.0")


def render_for_compose(template: str, settings: Settings, target: Path) -> Path:
    render(template, settings, target)
    overrides = COMPOSE_OVERRIDES.get(template)
    if overrides:
        text = target.read_text()
        props = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n" for k, v in overrides.items())
        marker = "  <!-- docker-compose (docker/launch.py) -->\n"
        text = text.replace("</configuration>", marker + props + "</configuration>")
        target.write_text(text)
    return target


def prepare_kafka(settings: Settings, conf: Path = CONF_DIR) -> list[str]:
    """Listeners and the advertised address are the service name (TWINLAYER_KAFKA_HOST) other containers use."""
    named = dataclasses.replace(settings, host=settings.host_of("kafka_port"))
    render_for_compose("kafka.properties", named, conf / "kafka.properties")
    render_for_compose("log4j2.properties", named, conf / "log4j2.properties")
    shutil.copy(TEMPLATES / "jmx_exporter.yml", conf / "jmx_exporter.yml")
    return kafka_command(settings, container_layout(conf))


def format_kafka_storage(settings: Settings) -> None:
    if (settings.state_dir / "kafka" / "data" / "meta.properties").exists():
        return
    cluster_id = os.environ.get("KAFKA_CLUSTER_ID") or kafka_cluster_id()
    subprocess.run(kafka_format_command(settings, container_layout(CONF_DIR), cluster_id), check=True)


def prepare_hbase(settings: Settings, role: str, conf: Path = CONF_DIR) -> list[str]:
    """Both HBase containers read the same hbase-site.xml: ZooKeeper, master and region server live in HBASE_HOST."""
    named = dataclasses.replace(settings, host=HBASE_HOST)
    render_for_compose("hbase-site.xml", named, conf / "hbase" / "hbase-site.xml")
    render_for_compose("log4j2.properties", named, conf / "log4j2.properties")
    shutil.copy(TEMPLATES / "log4j2.properties", conf / "hbase" / "log4j2.properties")
    for exporter in ("jmx_exporter.yml", "jmx_exporter_hbase.yml"):
        shutil.copy(TEMPLATES / exporter, conf / exporter)
    layout = container_layout(conf)
    return hbase_command(settings, layout) if role == "hbase" else thrift_command(settings, layout)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("kafka", "hbase", "hbase-thrift"):
        print(__doc__, file=sys.stderr)
        return 2
    settings = load_settings()
    (CONF_DIR / "hbase").mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    if argv[0] == "kafka":
        command = prepare_kafka(settings)
        format_kafka_storage(settings)
    else:
        command = prepare_hbase(settings, argv[0])
    sys.stdout.flush()
    os.execvp(command[0], command)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
