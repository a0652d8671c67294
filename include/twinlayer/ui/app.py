"""The Lambda page's web app, mounted by the Airflow plugin (``plugins/twinlayer_lambda.py``) in Airflow's API server.

Airflow does not protect a plugin's endpoints: the plugin passes its own authorization checks in (``can_read`` for
the page and its data, ``can_act`` for the actions), and every route depends on one of them. The actions that
start Airflow work (recompute an hour, backfill a range) call Airflow's REST API with the signed-in user's own
token, so Airflow decides again what that user may do; a rollback moves the hour's publication pointer directly.
Every action takes a JSON body: a form another site posts with the user's cookie is refused (422).

``settings`` is called for every request: the plugin resolves the endpoints from Airflow's connections, so the page
reads and rolls back the same HBase the DAGs write.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from typing import Annotated, Any

import requests
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from thriftpy2.thrift import TException

from twinlayer.model.config import Settings
from twinlayer.model.hours import HOUR_MS, hour_label, hour_start, hours_between, parse_time
from twinlayer.storage.hbase import HBaseUnavailable
from twinlayer.ui import page

RECOMPUTE_DAG = "twinlayer_recompute"
LONGEST_BACKFILL_HOURS = 7 * 24  # what the late-data DAG looks back over; a longer range is a CLI job
HBASE_DOWN = (TException, HBaseUnavailable, ConnectionError, socket.timeout)

Days = Annotated[int, Query(ge=1, le=8, description="how many days of hours to show (the speed table keeps 8)")]


class Done(BaseModel):
    message: str
    details: dict[str, Any] = {}


class Action(BaseModel):
    """An action's body (empty today): requiring one keeps cross-site forms out."""


class BackfillRequest(BaseModel):
    from_hour: str
    to_hour: str
    reprocess: bool = False


def _hour(label: str) -> int:
    try:
        return hour_start(label)
    except ValueError:
        raise HTTPException(400, f"an hour is written like 2026-12-01T05, not {label!r}") from None


def create_app(
    settings: Callable[[], Settings], can_read: Callable[..., Any], can_act: Callable[..., Any], token_cookie: str
) -> FastAPI:
    from twinlayer.batch import publish as publishing
    from twinlayer.localstack.airflow_api import AirflowApiError, AirflowClient
    from twinlayer.ops import overview
    from twinlayer.storage import hbase as hbase_store

    app = FastAPI(title="twinlayer Lambda page", docs_url=None, redoc_url=None)
    pools: dict[str, Any] = {}

    @app.exception_handler(AirflowApiError)
    def airflow_refused(request: Request, exc: AirflowApiError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status if 400 <= exc.status < 500 else 502)

    def hbase_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"HBase does not answer ({type(exc).__name__}): {exc}"}, status_code=503)

    def airflow_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"Airflow's REST API does not answer: {exc}"}, status_code=502)

    for unavailable in HBASE_DOWN:
        app.add_exception_handler(unavailable, hbase_down)
    app.add_exception_handler(requests.RequestException, airflow_down)  # a ConnectionError too: the closer wins

    reading, acting = [Depends(can_read)], [Depends(can_act)]

    def hbase(current: Settings):
        """One small Thrift connection pool per HBase endpoint, kept for the server's life."""
        address = current.address("thrift_port")
        if address not in pools:
            pools[address] = hbase_store.pool_for(current, size=2)
        return pools[address]

    def airflow(request: Request) -> AirflowClient:
        """Airflow's REST API as the signed-in user: their bearer token, else the UI's session cookie."""
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(token_cookie, "")
        return AirflowClient(settings().url("airflow_port"), token=token)

    def paused(request: Request) -> bool | None:
        try:
            return airflow(request).is_paused(RECOMPUTE_DAG)
        except (AirflowApiError, requests.RequestException):
            return None  # the page still shows both layers

    @app.get("/api/overview", dependencies=reading)
    def overview_data(days: Days = 2) -> dict[str, Any]:
        current = settings()
        return overview.overview(current, days, pool=hbase(current))

    @app.get("/lambda", dependencies=reading, response_class=HTMLResponse)
    def lambda_page(request: Request, days: Days = 2) -> str:
        current = settings()
        facts = overview.overview(current, days, pool=hbase(current))
        return page.lambda_page(facts, page.links(current), paused(request), days)

    @app.get("/run", dependencies=reading, response_class=HTMLResponse)
    def run_page(request: Request, dag_id: str, run_id: str) -> str:
        if dag_id != RECOMPUTE_DAG:
            return page.run_page(dag_id, None, None, None)
        run = airflow(request).run(dag_id, run_id)
        if not run.get("data_interval_start"):
            return page.run_page(dag_id, None, None, None)
        hour_ms = int(parse_time(run["data_interval_start"].replace("Z", "+00:00"), 0))
        current = settings()
        rows = overview.hour_rows(current, pool=hbase(current), hours=[hour_ms])
        return page.run_page(dag_id, run, dataclasses.asdict(rows[0]) if rows else None, hour_label(hour_ms))

    @app.post("/api/hours/{hour}/recompute", dependencies=acting)
    def recompute(hour: str, body: Action, request: Request) -> Done:
        start = _hour(hour)
        label, now_ms = hour_label(start), int(time.time() * 1000)
        run_id = f"lambda_page__{label}__{now_ms}"
        run = airflow(request).trigger(RECOMPUTE_DAG, start, start + HOUR_MS, run_id, now_ms)
        return Done(message=f"run {run['dag_run_id']} of {RECOMPUTE_DAG} recomputes {label}", details=run)

    @app.post("/api/hours/{hour}/rollback", dependencies=acting)
    def rollback(hour: str, body: Action) -> Done:
        current = settings()
        try:
            entry = publishing.rollback(hbase(current), current, _hour(hour))
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return Done(message=f"{hour_label(_hour(hour))} serves version {entry['version']} again", details=entry)

    @app.post("/api/backfills", dependencies=acting)
    def backfill(body: BackfillRequest, request: Request) -> Done:
        _hour(body.from_hour), _hour(body.to_hour)
        try:
            first, last = hours_between(body.from_hour, body.to_hour)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        hours = (last - first) // HOUR_MS + 1
        if hours > LONGEST_BACKFILL_HOURS:
            raise HTTPException(400, f"{hours} hours: the page backfills {LONGEST_BACKFILL_HOURS} at most")
        created = airflow(request).create_backfill(RECOMPUTE_DAG, first, last, body.reprocess)
        span = f"{hour_label(first)} to {hour_label(last)}, {hours} hour{'s' if hours > 1 else ''}"
        return Done(message=f"backfill {created['id']} of {RECOMPUTE_DAG}: {span}", details=created)

    return app
