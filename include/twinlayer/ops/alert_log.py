"""The receiver of Alertmanager's notifications on the embedded stack: a webhook on loopback that keeps them.

Alertmanager routes every notification here (one path per receiver, so the routing is visible); each one is appended
to ``state/alerts/notifications.jsonl`` and kept in memory for ``GET /notifications``. Operators read what was sent
and when; tests observe alerts firing and resolving end to end. A real deployment adds its own receivers (mail,
chat, paging) beside this one in ``monitoring/alertmanager/alertmanager.yml``.

    POST /receivers/{receiver}      Alertmanager webhook payload (version 4)
    GET  /notifications?receiver=R  what arrived, oldest first
    GET  /healthz
"""

from __future__ import annotations

import collections
import json
import threading
import time

from fastapi import FastAPI, Request

from twinlayer.model.config import Settings, load_settings

KEPT = 2000


def summarize(receiver: str, payload: dict, received_s: float) -> dict:
    """The parts of a webhook payload worth keeping: who got it, its status, and each alert's labels and state."""
    return {
        "receiver": receiver,
        "received": received_s,
        "status": payload.get("status"),
        "group_labels": payload.get("groupLabels", {}),
        "alerts": [
            {
                "status": a.get("status"),
                "labels": a.get("labels", {}),
                "summary": a.get("annotations", {}).get("summary"),
                "startsAt": a.get("startsAt"),
                "endsAt": a.get("endsAt"),
            }
            for a in payload.get("alerts", [])
        ],
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    path = settings.state_dir / "alerts" / "notifications.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    kept: collections.deque[dict] = collections.deque(maxlen=KEPT)
    lock = threading.Lock()
    app = FastAPI(title="twinlayer alert log", description=__doc__)

    @app.post("/receivers/{receiver}")
    async def receive(receiver: str, request: Request) -> dict:
        entry = summarize(receiver, await request.json(), time.time())
        with lock:
            kept.append(entry)
            with path.open("a") as out:
                out.write(json.dumps(entry) + "\n")
        return {"kept": True}

    @app.get("/notifications")
    def notifications(receiver: str | None = None) -> list[dict]:
        with lock:
            return [n for n in kept if receiver is None or n["receiver"] == receiver]

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    return app
