"""The serving layer over HTTP (FastAPI, run by uvicorn under the stack's supervisor).

    GET /views                                   the view definitions
    GET /views/{view}?key=K&from=T&to=T          merged windows, each with its source, and the time boundary
    GET /publications                            published batch version of every hour
    GET /healthz                                 200 when HBase answers
    GET /metrics                                 request latency histogram and counts (Prometheus)

Times are epoch ms or ISO-8601; ``from`` defaults to one hour ago and ``to`` to now. A key of the wrong shape, a
time that cannot be read or a range longer than ``serving_max_range_hours`` is a 400, before HBase is read; HBase or
its Thrift gateway not answering is a 503.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from thriftpy2.thrift import TException

from twinlayer.model.config import Settings, load_settings
from twinlayer.model.hours import parse_time
from twinlayer.model.views import VIEWS, by_name
from twinlayer.serving.merge import Server
from twinlayer.serving.models import MeasureInfo, Publication, ViewAnswer, ViewInfo
from twinlayer.storage import hbase as hbase_store

HBASE_DOWN = (TException, OSError, hbase_store.HBaseUnavailable)  # answered 503: the runbook's "HBase or Thrift down"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    server = Server(settings)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # its start time tells Prometheus about restarts
    latency = Histogram(
        "twinlayer_serving_request_seconds",
        "Serving request latency",
        ["route"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
        registry=registry,
    )
    requests_total = Counter("twinlayer_serving_requests", "Serving requests", ["route", "status"], registry=registry)
    app = FastAPI(title="twinlayer serving", description=__doc__)

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        if name != "/metrics":
            latency.labels(name).observe(time.perf_counter() - started)
            requests_total.labels(name, str(response.status_code)).inc()
        return response

    @app.get("/views")
    def views() -> list[ViewInfo]:
        return [
            ViewInfo(
                name=v.name,
                dimensions=list(v.dimensions),
                window_seconds=v.window_seconds,
                filter=v.filter,
                measures=[MeasureInfo(name=m.name, kind=m.kind) for m in v.measures],
                description=v.description,
                fingerprint=v.fingerprint,
            )
            for v in VIEWS
        ]

    @app.get("/views/{view}", response_model=ViewAnswer)
    def view_windows(
        view: str, key: str, start: str = Query("1h", alias="from"), end: str | None = Query(None, alias="to")
    ) -> dict:
        catalog = by_name()
        if view not in catalog:
            raise HTTPException(404, f"unknown view {view!r}; views: {', '.join(catalog)}")
        now_ms = int(time.time() * 1000)
        try:
            from_ms, to_ms = parse_time(start, now_ms), parse_time(end, now_ms) if end else now_ms + 1
            return server.query(catalog[view], key, from_ms, to_ms).as_dict()
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        except HBASE_DOWN as exc:
            raise HTTPException(503, f"HBase does not answer: {type(exc).__name__}") from None

    @app.get("/publications", response_model=dict[str, Publication], response_model_exclude_unset=True)
    def publications() -> dict:
        try:
            return server.publications()
        except HBASE_DOWN as exc:
            raise HTTPException(503, f"HBase does not answer: {type(exc).__name__}") from None

    @app.get("/healthz")
    def healthz() -> dict:
        try:
            hbase_store.ping(server.pool)
        except Exception as exc:  # noqa: BLE001
            raise HTTPException(503, f"HBase does not answer: {exc}") from None
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
