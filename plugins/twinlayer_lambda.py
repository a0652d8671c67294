"""Airflow plugin: the "Lambda" page in Airflow's navigation, and the hour of each ``twinlayer_recompute`` run.

The page's web app (``twinlayer.ui.app``) is mounted in Airflow's API server at ``/twinlayer``; external views show
it inside Airflow's UI. Airflow leaves a plugin's endpoints unprotected, so this file hands the app Airflow's own
authorization checks: reading needs the right to read ``twinlayer_recompute``'s runs, an action the right to create
them.
"""

from __future__ import annotations

from typing import ClassVar

from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.plugins_manager import AirflowPlugin

from twinlayer.model.config import load_settings
from twinlayer.ui.app import RECOMPUTE_DAG, create_app, links

PREFIX = "/twinlayer"

SETTINGS = load_settings()
app = create_app(
    SETTINGS,
    can_read=requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=RECOMPUTE_DAG),
    can_act=requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=RECOMPUTE_DAG),
    token_cookie=COOKIE_NAME_JWT_TOKEN,
)


class TwinlayerLambdaPlugin(AirflowPlugin):
    name = "twinlayer_lambda"
    fastapi_apps: ClassVar[list[dict]] = [{"app": app, "url_prefix": PREFIX, "name": "twinlayer Lambda page"}]
    external_views: ClassVar[list[dict]] = [
        {
            "name": "Lambda",
            "href": f"{PREFIX}/lambda",
            "destination": "nav",
            "url_route": "lambda",
        },
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
