"""Airflow plugin: the "Lambda" page in Airflow's navigation, and the hour of each ``twinlayer_recompute`` run.

The page's web app (``twinlayer.ui.app``) is mounted in Airflow's API server at ``/twinlayer``; external views show
it inside Airflow's UI. Airflow leaves a plugin's endpoints unprotected, so this file hands the app Airflow's own
authorization checks: reading needs the right to read ``twinlayer_recompute``'s runs, an action the right to create
them. Every request resolves HBase and the other endpoints from the same Airflow connections the DAGs' tasks read.

Airflow imports plugins in every task process too: the app, and the API server's modules it needs, are built on the
first request, so this file costs a task next to nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from twinlayer.model.config import Settings, load_settings, with_connections
from twinlayer.ui.page import links

PREFIX = "/twinlayer"
SETTINGS = load_settings()


def current_settings() -> Settings:
    """The settings with the endpoints of the twinlayer connections that exist (as the DAGs' tasks read them)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    return with_connections(SETTINGS, Connection.get_connection_from_secrets, AirflowNotFoundException)


class LambdaApp:
    """An ASGI app that builds the Lambda page's FastAPI app when the API server first calls it."""

    def __init__(self) -> None:
        self._app: Any = None

    def _build(self) -> Any:
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
        from airflow.api_fastapi.core_api.security import requires_access_dag

        from twinlayer.ui.app import RECOMPUTE_DAG, create_app

        return create_app(
            current_settings,
            can_read=requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=RECOMPUTE_DAG),
            can_act=requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=RECOMPUTE_DAG),
            token_cookie=COOKIE_NAME_JWT_TOKEN,
        )

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)


class TwinlayerLambdaPlugin(AirflowPlugin):
    name = "twinlayer_lambda"
    fastapi_apps: ClassVar[list[dict]] = [{"app": LambdaApp(), "url_prefix": PREFIX, "name": "twinlayer Lambda page"}]
    external_views: ClassVar[list[dict]] = [
        {"name": "Lambda", "href": f"{PREFIX}/lambda", "destination": "nav", "url_route": "lambda"},
        *(
            {"name": f"twinlayer · {name}", "href": url, "destination": "nav", "category": "browse"}
            for name, url in links(SETTINGS).items()
        ),
        {
            "name": "Lambda hour",
            "href": f"{PREFIX}/run?dag_id={{DAG_ID}}&run_id={{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "lambda_hour",
        },
    ]
