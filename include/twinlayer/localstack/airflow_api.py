"""A small client of Airflow's REST API (v2): trigger a DAG run for an explicit data interval and wait for it, or
run Airflow's own backfill over a range of dates.

Used by `make demo`, `twinlayer backfill` and the tests. It logs in as the embedded stack's Airflow admin (the
simple auth manager's generated password, ``localstack.services.airflow_login``) and sends the token it gets.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import requests

from twinlayer.model.hours import floor_hour, iso, parse_time


class AirflowApiError(RuntimeError):
    """Airflow answered a call with an HTTP error (``status``)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AirflowClient:
    def __init__(self, base_url: str, login: tuple[str, str] | None = None, timeout: float = 10.0, token: str = ""):
        """Logs in with ``login``, or sends ``token`` (a signed-in user's own, e.g. from the Lambda page)."""
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if login is not None:
            username, password = login
            response = self.session.post(
                f"{self.base}/auth/token", json={"username": username, "password": password}, timeout=timeout
            )
            if response.status_code == 401:
                raise PermissionError(f"Airflow at {self.base} refused the login of {username!r}")
            response.raise_for_status()
            token = response.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def for_stack(cls, settings, timeout: float = 10.0) -> AirflowClient:
        """A client of the embedded stack's Airflow, logged in as its admin."""
        from twinlayer.localstack.services import airflow_login

        return cls(settings.url("airflow_port"), airflow_login(settings), timeout=timeout)

    def _call(self, method: str, path: str, attempts: int = 1, **kwargs) -> dict:
        """One API call; ``attempts`` > 1 retries an HTTP 503 (an API server still starting, or a metadata database
        that refused a lock: Airflow answers 503 when creating a backfill meets one)."""
        for attempt in range(1, attempts + 1):
            response = self.session.request(method, f"{self.base}/api/v2{path}", timeout=self.timeout, **kwargs)
            if response.status_code != 503 or attempt == attempts:
                break
            time.sleep(3 * attempt)
        if response.status_code >= 400:
            raise AirflowApiError(
                f"Airflow API {method} {path}: HTTP {response.status_code} {response.text[:500]}", response.status_code
            )
        return response.json() if response.content else {}  # a DELETE answers 204, no body

    @contextlib.contextmanager
    def unpaused(self, dag_id: str):
        """Unpause ``dag_id`` for the block; it is left paused or not as it was."""
        was_paused = self.is_paused(dag_id)
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        try:
            yield
        finally:
            self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": was_paused})

    def ensure_connections(self, specs: list[dict]) -> list[str]:
        """Create each connection of ``specs`` that Airflow does not have; one a person edited stays as it is.
        Returns the ids created."""
        created = []
        for spec in specs:
            response = self.session.get(f"{self.base}/api/v2/connections/{spec['connection_id']}", timeout=self.timeout)
            if response.status_code == 404:
                self._call("POST", "/connections", json=spec)
                created.append(spec["connection_id"])
            elif response.status_code >= 400:
                raise AirflowApiError(f"Airflow API GET connection: HTTP {response.status_code}", response.status_code)
        return created

    def is_paused(self, dag_id: str) -> bool:
        return bool(self._call("GET", f"/dags/{dag_id}")["is_paused"])

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def create_backfill(self, dag_id: str, from_ms: int, to_ms: int, reprocess: bool = False) -> dict:
        """Create Airflow's backfill of ``dag_id`` for logical dates in [from_ms, to_ms] and return it, unwaited."""
        return self._create_backfill(dag_id, from_ms, to_ms, reprocess)

    def backfill(
        self,
        dag_id: str,
        from_ms: int,
        to_ms: int,
        timeout: float = 900,
        reprocess: bool = False,
        on_progress: Callable[[dict[int, str]], None] | None = None,
    ) -> dict[int, str]:
        """Airflow's own backfill of ``dag_id`` for logical dates in [from_ms, to_ms]; waits for it to complete and
        returns {hour: run state} (``backfill_runs``). ``on_progress`` hears that mapping at every poll."""
        started = time.monotonic()
        with self.unpaused(dag_id):
            backfill = self._create_backfill(dag_id, from_ms, to_ms, reprocess)
            while not self._call("GET", f"/backfills/{backfill['id']}").get("completed_at"):
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"backfill {backfill['id']} of {dag_id} did not complete in {timeout:.0f}s")
                if on_progress is not None:
                    on_progress(self.backfill_runs(dag_id, from_ms, to_ms))
                time.sleep(5)
        runs = self.backfill_runs(dag_id, from_ms, to_ms)
        if on_progress is not None:
            on_progress(runs)
        return runs

    def backfill_runs(self, dag_id: str, from_ms: int, to_ms: int) -> dict[int, str]:
        """{hour: state} of the newest backfill run of each UTC hour whose logical dates lie in [from_ms, to_ms]."""
        latest: dict[int, str] = {}
        offset, page = 0, 100
        while True:
            runs = self._call(
                "GET",
                f"/dags/{dag_id}/dagRuns",
                params={
                    "logical_date_gte": iso(from_ms),
                    "logical_date_lte": iso(to_ms),
                    "run_type": "backfill",
                    "order_by": "-run_after",
                    "limit": page,
                    "offset": offset,
                },
            )["dag_runs"]
            for run in runs:
                latest.setdefault(floor_hour(parse_time(run["logical_date"].replace("Z", "+00:00"), 0)), run["state"])
            if len(runs) < page:
                return latest
            offset += page

    def _create_backfill(self, dag_id: str, from_ms: int, to_ms: int, reprocess: bool) -> dict:
        """Create the backfill; when Airflow answers that one is already running for these very dates (a create
        whose answer was lost, e.g. a retried 503), that one is adopted."""
        try:
            return self._call(
                "POST",
                "/backfills",
                attempts=6,
                json={
                    "dag_id": dag_id,
                    "from_date": iso(from_ms),
                    "to_date": iso(to_ms),
                    "max_active_runs": 2,
                    "reprocess_behavior": "completed" if reprocess else "none",
                },
            )
        except RuntimeError as refused:
            if "HTTP 409" not in str(refused):
                raise
            running = [
                b
                for b in self._call("GET", "/backfills", params={"dag_id": dag_id, "limit": 100})["backfills"]
                if not b.get("completed_at")
                and parse_time(b["from_date"].replace("Z", "+00:00"), 0) == from_ms
                and parse_time(b["to_date"].replace("Z", "+00:00"), 0) == to_ms
            ]
            if not running:
                raise
            return running[-1]

    def has_run(self, dag_id: str, logical_ms: int) -> bool:
        """Whether ``dag_id`` has a run for this logical date (Airflow keeps one per date)."""
        runs = self._call(
            "GET",
            f"/dags/{dag_id}/dagRuns",
            params={"logical_date_gte": iso(logical_ms), "logical_date_lte": iso(logical_ms), "limit": 1},
        )
        return bool(runs["dag_runs"])

    def trigger(self, dag_id: str, start_ms: int, end_ms: int, run_id: str, logical_ms: int | None = None) -> dict:
        """A run of ``dag_id`` for the data interval [start_ms, end_ms); its logical date is ``start_ms`` unless
        given (Airflow keeps one run per logical date, and the hour's scheduled run may hold that one)."""
        return self._call(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            json={
                "dag_run_id": run_id,
                "logical_date": iso(start_ms if logical_ms is None else logical_ms),
                "data_interval_start": iso(start_ms),
                "data_interval_end": iso(end_ms),
            },
        )

    def wait(
        self,
        dag_id: str,
        run_id: str,
        timeout: float = 600,
        on_progress: Callable[[dict[str, str | None]], None] | None = None,
    ) -> dict:
        """Wait for a run to end; returns {"state", "tasks", "seconds"}. A run that does not exist yet is waited for
        too (another DAG may be about to trigger it). ``on_progress`` hears {task: state} at every poll."""
        started = time.monotonic()
        while True:
            response = self.session.get(f"{self.base}/api/v2/dags/{dag_id}/dagRuns/{run_id}", timeout=self.timeout)
            if response.status_code not in (200, 404):
                raise RuntimeError(f"Airflow API: run {run_id} of {dag_id}: HTTP {response.status_code}")
            if response.status_code == 200 and response.json()["state"] in ("success", "failed"):
                break
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{dag_id} run {run_id} did not finish within {timeout:.0f}s")
            if on_progress is not None and response.status_code == 200:
                on_progress(self.task_states(dag_id, run_id))
            time.sleep(3)
        tasks = self.task_states(dag_id, run_id)
        if on_progress is not None:
            on_progress(tasks)
        return {"state": response.json()["state"], "tasks": tasks, "seconds": time.monotonic() - started}

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {t["task_id"]: t["state"] for t in self.task_instances(dag_id, run_id)}

    def run_interval(
        self,
        dag_id: str,
        start_ms: int,
        end_ms: int,
        run_id: str,
        timeout: float = 600,
        on_progress: Callable[[dict[str, str | None]], None] | None = None,
    ) -> dict:
        """Run ``dag_id`` for [start_ms, end_ms) and wait; returns {"state", "tasks", "seconds"}. The DAG is
        unpaused for the run and left paused or not as it was."""
        with self.unpaused(dag_id):
            self.trigger(dag_id, start_ms, end_ms, run_id)
            return self.wait(dag_id, run_id, timeout, on_progress)
