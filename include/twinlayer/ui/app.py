"""The Lambda page's web app, mounted by the Airflow plugin (``plugins/twinlayer_lambda.py``) in Airflow's API server.

Airflow does not protect a plugin's endpoints: the plugin passes its own authorization checks in (``can_read`` for
the page and its data, ``can_act`` for the actions), and every route depends on one of them. The actions that
start Airflow work (recompute an hour, backfill a range) call Airflow's REST API with the signed-in user's own
token, so Airflow decides again what that user may do; a rollback moves the hour's publication pointer directly.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Annotated, Any

import requests
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS, hour_label, hour_start, parse_time
from twinlayer.ui import page

RECOMPUTE_DAG = "twinlayer_recompute"
DASHBOARDS = {
    "Lambda overview": "twinlayer-overview",
    "Speed layer": "twinlayer-speed",
    "Batch layer": "twinlayer-batch",
    "Business view": "twinlayer-business",
}


Days = Annotated[int, Query(ge=1, le=8, description="how many days of hours to show (the speed table keeps 8)")]


class Done(BaseModel):
    message: str
    details: dict[str, Any] = {}


class BackfillRequest(BaseModel):
    from_hour: str
    to_hour: str
    reprocess: bool = False


def _hour(label: str) -> int:
    try:
        return hour_start(label)
    except ValueError:
        raise HTTPException(400, f"an hour is written like 2026-12-01T05, not {label!r}") from None


def links(settings: Settings) -> dict[str, str]:
    grafana = settings.grafana_url.rstrip("/")
    return {
        **{name: f"{grafana}/d/{uid}" for name, uid in DASHBOARDS.items()},
        "Serving API docs": f"{settings.url('serving_port')}/docs",
    }


def create_app(
    settings: Settings, can_read: Callable[..., Any], can_act: Callable[..., Any], token_cookie: str
) -> FastAPI:
    from twinlayer.batch import publish as publishing
    from twinlayer.localstack.airflow_api import AirflowApiError, AirflowClient
    from twinlayer.ops import overview
    from twinlayer.serving.api import HBASE_DOWN
    from twinlayer.storage import hbase as hbase_store

    app = FastAPI(title="twinlayer Lambda page", docs_url=None, redoc_url=None)

    @app.exception_handler(AirflowApiError)
    def airflow_refused(request: Request, exc: AirflowApiError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status if 400 <= exc.status < 500 else 502)

    def hbase_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"HBase does not answer ({type(exc).__name__}): {exc}"}, status_code=503)

    def airflow_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"Airflow's REST API does not answer: {exc}"}, status_code=502)

    for unavailable in HBASE_DOWN:
        app.add_exception_handler(unavailable, hbase_down)
    app.add_exception_handler(requests.RequestException, airflow_down)  # an OSError too: the more specific wins

    reading, acting = [Depends(can_read)], [Depends(can_act)]

    def airflow(request: Request) -> AirflowClient:
        """Airflow's REST API as the signed-in user: their bearer token, else the UI's session cookie."""
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(token_cookie, "")
        return AirflowClient(settings.url("airflow_port"), token=token)

    def paused(request: Request) -> bool | None:
        try:
            return airflow(request).is_paused(RECOMPUTE_DAG)
        except AirflowApiError:
            return None

    @app.get("/api/overview", dependencies=reading)
    def overview_data(days: Days = 2) -> dict[str, Any]:
        return overview.overview(settings, days)

    @app.get("/lambda", dependencies=reading, response_class=HTMLResponse)
    def lambda_page(request: Request, days: Days = 2) -> str:
        return page.lambda_page(overview.overview(settings, days), links(settings), paused(request), days)

    @app.get("/run", dependencies=reading, response_class=HTMLResponse)
    def run_page(request: Request, dag_id: str, run_id: str) -> str:
        if dag_id != RECOMPUTE_DAG:
            return page.run_page(dag_id, None, None, None)
        run = airflow(request).run(dag_id, run_id)
        if not run.get("data_interval_start"):
            return page.run_page(dag_id, None, None, None)
        hour_ms = int(parse_time(run["data_interval_start"].replace("Z", "+00:00"), 0))
        rows = [r for r in overview.hour_rows(settings, days=8) if r.hour_ms == hour_ms]
        return page.run_page(dag_id, run, dataclasses.asdict(rows[0]) if rows else None, hour_label(hour_ms))

    @app.post("/api/hours/{hour}/recompute", dependencies=acting)
    def recompute(hour: str, request: Request) -> Done:
        start = _hour(hour)
        now_ms = int(time.time() * 1000)
        run = airflow(request).trigger(RECOMPUTE_DAG, start, start + HOUR_MS, f"lambda_page__{hour}__{now_ms}", now_ms)
        return Done(message=f"run {run['dag_run_id']} of {RECOMPUTE_DAG} recomputes {hour}", details=run)

    @app.post("/api/hours/{hour}/rollback", dependencies=acting)
    def rollback(hour: str) -> Done:
        try:
            entry = publishing.rollback(hbase_store.pool_for(settings, size=1), settings, _hour(hour))
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return Done(message=f"{hour} serves version {entry['version']} again", details=entry)

    @app.post("/api/backfills", dependencies=acting)
    def backfill(body: BackfillRequest, request: Request) -> Done:
        first, last = _hour(body.from_hour), _hour(body.to_hour)
        if last < first:
            raise HTTPException(400, f"the range ends ({body.to_hour}) before it starts ({body.from_hour})")
        created = airflow(request).create_backfill(RECOMPUTE_DAG, first, last, body.reprocess)
        hours = (last - first) // HOUR_MS + 1
        span = f"{body.from_hour} to {body.to_hour}, {hours} hour{'s' if hours > 1 else ''}"
        return Done(message=f"backfill {created['id']} of {RECOMPUTE_DAG}: {span}", details=created)

    return app
