"""Every DAG in dags/ parses as Airflow's DAG processor parses it, fast, with tags, docs and retries — no service
needed: the DAG files are read by a DagBag in a child process with the stack's Airflow environment."""

import ast
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from twinlayer.localstack.services import airflow_env
from twinlayer.model.config import PROJECT_ROOT, load_settings

DAGBAG_SCRIPT = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
# as the DAG processor parses the dags-folder bundle: the bundle's root is importable (dags/common)
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]))
print(json.dumps({"dags": {d: bag.dags[d].fileloc for d in bag.dag_ids},
                  "errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "parse_seconds": {Path(s.file).name: s.duration.total_seconds() for s in bag.dagbag_stats},
                  "integrity": {d: {"tags": sorted(dag.tags), "doc": bool(dag.doc_md),
                                    "retries": {t.task_id: t.retries for t in dag.tasks},
                                    "timetable": type(dag.timetable).__name__,
                                    "outlets": {t.task_id: [a.name for a in t.outlets] for t in dag.tasks if t.outlets},
                                    "map_index_templates": {t.task_id: t.map_index_template for t in dag.tasks
                                                            if getattr(t, "map_index_template", None)}}
                                for d, dag in bag.dags.items()}}))
"""


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    settings = dataclasses.replace(load_settings(), state_dir=tmp_path_factory.mktemp("state"))
    env = {**os.environ, **airflow_env(settings)}
    result = subprocess.run(
        [sys.executable, "-c", DAGBAG_SCRIPT, str(PROJECT_ROOT / "dags")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag["errors"] == {}
    dag_files = {p.name for p in (PROJECT_ROOT / "dags").glob("*.py") if not p.name.startswith("_")}
    files_with_dags = {os.path.basename(loc) for loc in dagbag["dags"].values()}
    assert dag_files == files_with_dags, "every file in dags/ defines at least one DAG"


def test_every_dag_parses_fast_and_carries_tags_docs_and_retries(dagbag):
    assert dagbag["parse_seconds"] and max(dagbag["parse_seconds"].values()) < 2.0, dagbag["parse_seconds"]
    for dag_id, facts in dagbag["integrity"].items():
        assert "twinlayer" in facts["tags"], dag_id
        assert facts["doc"], f"{dag_id} has no doc_md"
        # a quality gate's or a check's failure is a verdict, final; everything else is retried
        verdicts = {t for t in facts["retries"] if t.startswith(("validate_", "check_"))}
        assert all(r >= 1 for t, r in facts["retries"].items() if t not in verdicts), (dag_id, facts["retries"])
        assert all(facts["retries"][t] == 0 for t in verdicts), (dag_id, facts["retries"])


def test_dags_use_airflow_through_its_task_sdk_only():
    """Airflow 3's authoring interface is ``airflow.sdk``; providers bring their own operators."""
    allowed = ("airflow.sdk", "airflow.providers.")
    for path in (PROJECT_ROOT / "dags").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("airflow") or name.startswith(allowed), f"{path.name} imports {name}"


def test_assets_have_producers_and_the_metric_export_follows_them(dagbag):
    dags = dagbag["integrity"]
    assert dags["twinlayer_recompute"]["outlets"] == {"publish": ["twinlayer_batch_views"]}
    assert dags["twinlayer_archive_quality"]["outlets"] == {"check_archive": ["twinlayer_raw_archive"]}
    assert dags["twinlayer_metric_export"]["timetable"] == "AssetOrTimeSchedule"
    assert dags["twinlayer_late_recompute"]["map_index_templates"] == {
        "recompute_late_hour": "{{ task.trigger_run_id.split('__')[1] }}"
    }


def test_tasks_reach_the_services_named_by_the_connections_that_exist(monkeypatch):
    """A stand-in for Airflow's connection lookup (pure logic): what exists overrides, what is missing keeps the
    settings."""
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "dags"))
    from airflow.sdk.exceptions import AirflowNotFoundException
    from common import connections

    def lookup(conn_id):
        if conn_id != "twinlayer_hbase":
            raise AirflowNotFoundException(conn_id)
        return type("Connection", (), {"host": "hbase-gateway", "port": 9191})()

    monkeypatch.setattr(connections.BaseHook, "get_connection", staticmethod(lookup))
    connections.endpoint_environment.cache_clear()
    settings = connections.task_settings()
    assert settings.address("thrift_port") == "hbase-gateway:9191"
    assert settings.kafka_bootstrap == load_settings().kafka_bootstrap
    variables = connections.endpoint_environment()
    assert set(variables) == set(connections.ENDPOINT_VARIABLES)
    assert (variables["TWINLAYER_THRIFT_HOST"], variables["TWINLAYER_THRIFT_PORT"]) == ("hbase-gateway", "9191")
    connections.endpoint_environment.cache_clear()
