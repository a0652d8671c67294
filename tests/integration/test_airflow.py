"""Airflow 3 of the embedded stack: the running API server and DAG processor know every DAG of dags/ (their
integrity without services: tests/unit/dags)."""

import re
import stat
import time

import pytest
import requests

from twinlayer.localstack.airflow_api import AirflowClient
from twinlayer.localstack.services import airflow_login, airflow_passwords_file
from twinlayer.model.config import PROJECT_ROOT

pytestmark = pytest.mark.integration


def dag_ids_in_files() -> set[str]:
    return {m for p in (PROJECT_ROOT / "dags").glob("*.py") for m in re.findall(r'dag_id="([^"]+)"', p.read_text())}


@pytest.fixture(scope="module")
def api(stack, settings):
    client = AirflowClient.for_stack(settings)
    return client.base, client.session


def test_airflow_needs_a_login_and_its_secrets_are_the_owner_s_alone(stack, settings):
    base = settings.url("airflow_port")
    assert requests.get(f"{base}/api/v2/dags", timeout=10).status_code == 401
    assert requests.get(f"{base}/auth/token", timeout=10).status_code == 403  # no token without a login
    user, password = airflow_login(settings)
    wrong = requests.post(f"{base}/auth/token", json={"username": user, "password": password + "x"}, timeout=10)
    assert wrong.status_code == 401
    with pytest.raises(PermissionError):
        AirflowClient(base, (user, password + "x"))
    for secret in (
        settings.state_dir / "supervisord.conf",
        settings.state_dir / "airflow" / "jwt_secret",
        airflow_passwords_file(settings),
    ):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    quit_prometheus = requests.post(f"{settings.url('prometheus_port')}/-/quit", timeout=10)
    assert quit_prometheus.status_code == 403 and "Lifecycle API is not enabled" in quit_prometheus.text
    assert requests.get(f"{settings.url('prometheus_port')}/-/healthy", timeout=10).status_code == 200


def test_api_server_is_healthy(stack, settings):
    health = requests.get(f"{settings.url('airflow_port')}/api/v2/monitor/health", timeout=10).json()
    assert {
        part: health[part]["status"] for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
    } == dict.fromkeys(("metadatabase", "scheduler", "triggerer", "dag_processor"), "healthy")


def test_running_dag_processor_parsed_every_dag_without_errors(api):
    dag_ids = dag_ids_in_files()
    base, session = api
    deadline = time.monotonic() + 120
    while True:
        dags = session.get(f"{base}/api/v2/dags", params={"limit": 100}, timeout=10)
        assert dags.status_code == 200, dags.text
        known = {d["dag_id"] for d in dags.json()["dags"]}
        if dag_ids <= known or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert dag_ids <= known
    errors = session.get(f"{base}/api/v2/importErrors", timeout=10).json()
    assert errors["total_entries"] == 0, errors
