"""Every DAG in dags/ parses as Airflow's DAG processor parses it, fast, with tags, docs and retries — no service
needed: the DAG files are read by a DagBag in a child process with the stack's Airflow environment."""

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
                                    "retries": {t.task_id: t.retries for t in dag.tasks}}
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
