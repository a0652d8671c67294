"""Airflow 3 of the embedded stack: every DAG in dags/ imports cleanly, and the running API server knows them."""

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from twinlayer.config import PROJECT_ROOT
from twinlayer.stack import airflow_env

pytestmark = pytest.mark.integration

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
                                    "retries": {t.task_id: t.retries for t in dag.tasks}}
                                for d, dag in bag.dags.items()}}))
"""


@pytest.fixture(scope="module")
def dagbag(stack, settings):
    env = {**os.environ, **airflow_env(settings)}
    result = subprocess.run([sys.executable, "-c", DAGBAG_SCRIPT, str(PROJECT_ROOT / "dags")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def api(stack, settings):
    base = settings.url("airflow_port")
    token = requests.get(f"{base}/auth/token", timeout=10).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return base, session


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


def test_api_server_is_healthy(stack, settings):
    health = requests.get(f"{settings.url('airflow_port')}/api/v2/monitor/health", timeout=10).json()
    assert {part: health[part]["status"] for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")} \
        == dict.fromkeys(("metadatabase", "scheduler", "triggerer", "dag_processor"), "healthy")


def test_running_dag_processor_parsed_every_dag_without_errors(api, dagbag):
    base, session = api
    deadline = time.monotonic() + 120
    while True:
        dags = session.get(f"{base}/api/v2/dags", params={"limit": 100}, timeout=10)
        assert dags.status_code == 200, dags.text
        known = {d["dag_id"] for d in dags.json()["dags"]}
        if set(dagbag["dags"]) <= known or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert set(dagbag["dags"]) <= known
    errors = session.get(f"{base}/api/v2/importErrors", timeout=10).json()
    assert errors["total_entries"] == 0, errors
