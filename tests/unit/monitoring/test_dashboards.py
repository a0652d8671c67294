"""The Grafana dashboards and their provisioning, checked without Grafana or any service: structure, datasource,
template variables, PromQL syntax (promtool), and that every metric a panel reads is one twinlayer exports.

Whether every panel returns data is checked against the live Prometheus by the integration tests."""

import ast
import copy
import re
import subprocess

import pytest
import yaml

from tests.tools import installed
from twinlayer.localstack import dashboards
from twinlayer.localstack.dashboards import (
    check_dashboard,
    iter_panels,
    metric_names,
    panel_queries,
)
from twinlayer.model.config import PROJECT_ROOT, Settings

INCLUDE = PROJECT_ROOT / "include" / "twinlayer"
RECORDING_RULES = PROJECT_ROOT / "monitoring" / "prometheus" / "rules" / "recording.yml"
EXPECTED_UIDS = {"twinlayer-speed", "twinlayer-batch", "twinlayer-overview", "twinlayer-business"}
# Where the metrics are defined: prometheus_client constructors and push_gauges calls.
METRIC_SOURCES = (
    "speed/metrics.py",
    "serving/api.py",
    "batch/report.py",
    "batch/gates.py",
    "batch/drift.py",
    "ops/watchdog.py",
    "ops/health.py",
)
# Series Prometheus and the Pushgateway add themselves.
STANDARD_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "ALERTS",
    "ALERTS_FOR_STATE",
    "push_time_seconds",
    "push_failure_time_seconds",
}
# What each kind of metric is exposed as (prometheus_client; the Pushgateway keeps the pushed names).
EXPOSED_AS = {
    "Gauge": ("",),
    "Counter": ("_total", "_created"),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"),
    "push_gauges": ("",),
}
GRAFANA_UNITS = {
    "none",
    "short",
    "percent",
    "percentunit",
    "s",
    "ms",
    "dtdurations",
    "dateTimeAsIso",
    "dateTimeFromNow",
    "reqps",
    "bytes",
    "decbytes",
}

DASHBOARDS = dashboards.load_dashboards()


def by_uid(uid):
    return next(d for d in DASHBOARDS.values() if d.get("uid") == uid)


# --- what the project exports ---------------------------------------------------------------------------------------


def _resolve(node, constants, loops, dicts, where) -> list[str]:
    """The string values an AST expression naming a metric can take in its module."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in constants:
        return [constants[node.id]]
    if isinstance(node, ast.Name) and node.id in loops and loops[node.id] in dicts:
        return dicts[loops[node.id]]  # for metric, ... in gauges.items(), gauges a dict literal of metric names
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [
            a + b
            for a in _resolve(node.left, constants, loops, dicts, where)
            for b in _resolve(node.right, constants, loops, dicts, where)
        ]
    raise AssertionError(f"{where}: cannot tell which metric {ast.unparse(node)!r} names")


def metrics_defined_in(path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    dicts = {
        target.id: [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    loops = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For)
            and isinstance(node.iter, ast.Call)
            and isinstance(node.iter.func, ast.Attribute)
            and node.iter.func.attr == "items"
            and isinstance(node.iter.func.value, ast.Name)
        ):
            first = node.target.elts[0] if isinstance(node.target, ast.Tuple) else node.target
            if isinstance(first, ast.Name):
                loops[first.id] = node.iter.func.value.id
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if func not in EXPOSED_AS:
            continue
        position, keyword = (2, "metric") if func == "push_gauges" else (0, "name")
        arg = (
            node.args[position]
            if len(node.args) > position
            else next((k.value for k in node.keywords if k.arg == keyword), None)
        )
        assert arg is not None, f"{path.name}:{node.lineno}: {func}() without a metric name"
        for resolved in _resolve(arg, constants, loops, dicts, f"{path.name}:{node.lineno}"):
            base = resolved.removesuffix("_total") if func == "Counter" else resolved
            names |= {base + suffix for suffix in EXPOSED_AS[func]}
    return names


def recorded_series() -> set[str]:
    groups = yaml.safe_load(RECORDING_RULES.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def exported_series() -> set[str]:
    names = set()
    for source in METRIC_SOURCES:
        found = metrics_defined_in(INCLUDE / source)
        assert found, f"no metric found in {source}"
        names |= found
    return names | recorded_series() | STANDARD_SERIES


def variable_metrics(dashboard) -> set[str]:
    found = set()
    for variable in dashboards.template_variables(dashboard).values():
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        found |= set(re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)", text))
    return found


def test_metrics_defined_in_the_sources_are_found():
    exported = exported_series()
    # one of each kind and each way of defining: a prefixed Counter, a Histogram, a pushed gauge named in a loop
    assert {
        "twinlayer_speed_input_rows_total",
        "twinlayer_speed_freshness_seconds_bucket",
        "twinlayer_serving_requests_total",
        "twinlayer_batch_late_records",
        "twinlayer_service_up",
        "twinlayer_speed_watchdog_healthy",
        "twinlayer:batch_boundary_lag_seconds",
    } <= exported
    assert "twinlayer_speed_input_rows" not in exported  # a counter is only exposed with its _total suffix


# --- the dashboards ---------------------------------------------------------------------------------------------------


def test_the_four_dashboards_exist_with_unique_uids():
    uids = [d.get("uid") for d in DASHBOARDS.values()]
    assert len(uids) == len(set(uids)), uids
    assert set(uids) == EXPECTED_UIDS


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_has_no_problem(name):
    assert check_dashboard(DASHBOARDS[name]) == []


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_layout_and_units(name):
    dashboard = DASHBOARDS[name]
    assert dashboard["schemaVersion"] == 39
    panels = list(iter_panels(dashboard))
    assert panels, "a dashboard without panels"
    cells = {}
    for panel in iter_panels(dashboard, include_rows=True):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
    for panel in panels:
        unit = panel["fieldConfig"]["defaults"]["unit"]
        assert unit in GRAFANA_UNITS or unit.startswith("suffix:"), (panel["title"], unit)


def test_every_metric_read_by_a_dashboard_is_exported():
    exported = exported_series()
    for dashboard in DASHBOARDS.values():
        used = variable_metrics(dashboard)
        for query in panel_queries(dashboard):
            names = metric_names(query.expr)
            assert names, f"{query.panel!r} {query.ref_id} selects no metric: {query.expr}"
            used |= names
        assert used - exported == set(), dashboard["uid"]


def test_dashboards_use_the_recording_rules_instead_of_repeating_them():
    def flat(text):
        return re.sub(r"\s+", "", text)

    groups = yaml.safe_load(RECORDING_RULES.read_text())["groups"]
    rules = {rule["record"]: flat(rule["expr"]) for group in groups for rule in group["rules"] if "record" in rule}
    for dashboard in DASHBOARDS.values():
        for query in panel_queries(dashboard):
            for record, expr in rules.items():
                assert expr not in flat(query.promql), f"{query.panel!r} repeats {record}"


def test_the_speed_dashboard_filters_by_query_and_view():
    variables = dashboards.template_variables(by_uid("twinlayer-speed"))
    assert variables["query"]["definition"] == "label_values(twinlayer_speed_query_active, query)"
    assert variables["view"]["definition"] == "label_values(twinlayer_speed_view_rows_written_total, view)"
    for name in ("query", "view"):
        assert variables[name]["allValue"] == ".*" and variables[name]["includeAll"]
    used = set().union(*(dashboards.expr_variables(q.expr) for q in panel_queries(by_uid("twinlayer-speed"))))
    assert {"query", "view"} <= used


def test_every_expression_is_valid_promql(tmp_path):
    queries = [q for d in DASHBOARDS.values() for q in panel_queries(d)]
    assert len(queries) >= 40
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [{"record": f"check:expr_{i}", "expr": q.promql} for i, q in enumerate(queries)],
            }
        ]
    }
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    result = subprocess.run(
        [installed("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and f"SUCCESS: {len(queries)} rules found" in result.stdout, (
        result.stdout + result.stderr
    )


def test_promtool_check_catches_a_bad_expression(tmp_path):
    path = tmp_path / "bad.rules.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "bad",
                        "rules": [
                            {
                                "record": "check:expr_0",
                                "expr": "sum by (view (rate(twinlayer_speed_view_rows_written_total[1m]))",
                            }
                        ],
                    }
                ]
            }
        )
    )
    result = subprocess.run(
        [installed("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0


# --- provisioning ------------------------------------------------------------------------------------------------


def test_datasource_provisioning_names_the_uid_the_dashboards_use():
    config = yaml.safe_load((dashboards.PROVISIONING_DIR / "datasources" / "prometheus.yml").read_text())
    assert config["apiVersion"] == 1
    [source] = config["datasources"]
    assert source["type"] == "prometheus" and source["name"] == "Prometheus" and source["isDefault"] is True
    assert source["uid"] == dashboards.DATASOURCE_UID
    assert source["url"] == f"http://prometheus:{Settings().prometheus_port}"
    for dashboard in DASHBOARDS.values():
        variable = dashboards.template_variables(dashboard)["datasource"]
        assert variable["current"]["value"] == source["uid"], dashboard["uid"]
        for panel in iter_panels(dashboard):
            for ref in [panel["datasource"], *(t.get("datasource") for t in panel["targets"])]:
                assert ref is None or ref["uid"] in ("${datasource}", source["uid"]), panel["title"]


def test_dashboard_provisioning_loads_the_dashboards_folder():
    config = yaml.safe_load((dashboards.PROVISIONING_DIR / "dashboards" / "twinlayer.yml").read_text())
    assert config["apiVersion"] == 1
    [provider] = config["providers"]
    assert provider["type"] == "file" and provider["folder"] == "twinlayer"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# --- the module's own behaviour -------------------------------------------------------------------------------------


def test_panel_queries_substitute_variables_and_builtins():
    speed = by_uid("twinlayer-speed")
    queries = panel_queries(speed)
    assert all(not dashboards.variable_uses(q.promql) for q in queries)
    rated = [q for q in queries if "$__rate_interval" in q.expr]
    assert rated and all("[1m]" in q.promql for q in rated)
    state = next(q for q in queries if q.panel == "Query state")
    assert state.dashboard == "twinlayer-speed" and state.ref_id == "A"
    assert state.promql == 'twinlayer_speed_query_active{query=~".*"}'
    chosen = next(q for q in panel_queries(speed, {"query": "views"}) if q.panel == "Query state")
    assert chosen.promql == 'twinlayer_speed_query_active{query=~"views"}'
    ranged = [q for d in DASHBOARDS.values() for q in panel_queries(d) if "$__range" in q.expr]
    assert ranged and all("[1h]" in q.promql for q in ranged)


def synthetic_dashboard():
    ds = {"type": "prometheus", "uid": "${datasource}"}
    panel = {
        "id": 3,
        "type": "stat",
        "title": "nested",
        "description": "a panel inside a collapsed row",
        "datasource": ds,
        "gridPos": {"h": 4, "w": 6, "x": 0, "y": 1},
        "fieldConfig": {"defaults": {"unit": "short"}},
        "targets": [{"refId": "A", "expr": 'up{job="$job", instance=~"$instance"}[$__interval]'}],
    }
    return {
        "uid": "synthetic",
        "title": "synthetic",
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "job",
                    "type": "query",
                    "datasource": ds,
                    "query": "label_values(up, job)",
                    "current": {"value": "serving"},
                },
                {
                    "name": "instance",
                    "type": "query",
                    "datasource": ds,
                    "query": "label_values(up, instance)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".+",
                },
            ]
        },
        "panels": [
            {
                "id": 1,
                "type": "row",
                "title": "collapsed",
                "collapsed": True,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0},
                "panels": [panel],
            }
        ],
    }


def test_nested_panels_are_walked_and_variables_follow_their_definition():
    dashboard = synthetic_dashboard()
    assert [p["title"] for p in iter_panels(dashboard)] == ["nested"]
    assert [p["title"] for p in iter_panels(dashboard, include_rows=True)] == ["collapsed", "nested"]
    assert check_dashboard(dashboard) == []
    [query] = panel_queries(dashboard)
    assert query.panel == "nested" and query.promql == 'up{job="serving", instance=~".+"}[15s]'
    [query] = panel_queries(dashboard, {"job": "kafka", "instance": "a|b"})
    assert query.promql == 'up{job="kafka", instance=~"a|b"}[15s]'
    dashboard["panels"][0]["panels"][0]["targets"][0]["expr"] = 'up{job="$missing"}'
    with pytest.raises(ValueError, match="missing"):
        panel_queries(dashboard)


def problems_after(change) -> str:
    dashboard = copy.deepcopy(by_uid("twinlayer-speed"))
    change(dashboard)
    return "\n".join(check_dashboard(dashboard))


def first_panel(dashboard):
    return next(iter_panels(dashboard))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("uid"), "no uid"),
        (lambda d: d.update(title=""), "no title"),
        (lambda d: d["panels"].append(copy.deepcopy(first_panel(d))), "duplicate panel id"),
        (lambda d: first_panel(d).update(datasource={"type": "prometheus", "uid": "other"}), "is not ${datasource}"),
        (
            lambda d: first_panel(d)["targets"][0].update(datasource={"type": "loki", "uid": "x"}),
            "is not ${datasource}",
        ),
        (lambda d: first_panel(d)["targets"][0].update(expr='up{job=~"$nowhere"}'), "$nowhere is not a template"),
        (lambda d: first_panel(d)["targets"][0].update(expr='up{query="$query"}'), "used outside a =~ matcher"),
        (lambda d: first_panel(d)["targets"][0].pop("expr"), "no expr"),
        (lambda d: first_panel(d).update(targets=[]), "no targets"),
        (lambda d: first_panel(d).update(title=""), "no title"),
        (lambda d: first_panel(d).update(description=""), "no description"),
        (lambda d: first_panel(d)["fieldConfig"]["defaults"].pop("unit"), "no unit"),
        (lambda d: first_panel(d).update(type="piechart"), "panel type 'piechart'"),
        (lambda d: d["templating"]["list"].pop(0), "no template variable 'datasource'"),
        (
            lambda d: d["panels"].append(
                {
                    "id": 99,
                    "type": "row",
                    "title": "r",
                    "collapsed": True,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": 99},
                    "panels": [{"id": 2, "type": "stat", "title": "hidden"}],
                }
            ),
            "duplicate panel id 2",
        ),
    ],
)
def test_check_dashboard_reports(change, problem):
    assert problem in problems_after(change)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (view) (rate(twinlayer_speed_view_rows_written_total{view=~"$view"}[$__rate_interval]))',
            {"twinlayer_speed_view_rows_written_total"},
        ),
        ('label_replace(time() - a_seconds{gate=~"x.*"}, "gate", "$1", "gate", "(.+?)(_last_run)?")', {"a_seconds"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m] offset 1h))) > 1e-9 and on (job) up",
            {"b_bucket", "up"},
        ),
        ('count(ALERTS{alertstate="firing"}) or vector(0)', {"ALERTS"}),
        (
            "twinlayer:batch_boundary_lag_seconds / ignoring (le) group_left c",
            {"twinlayer:batch_boundary_lag_seconds", "c"},
        ),
    ],
)
def test_metric_names(expr, names):
    assert metric_names(expr) == names
