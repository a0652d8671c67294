"""The Grafana dashboards of twinlayer as data: load them, walk their panels, check them, and turn every panel's
queries into PromQL that Prometheus answers directly.

No Grafana server runs on the machines that build and test twinlayer, so nothing renders the JSON files in
``monitoring/grafana/dashboards`` before a person opens them in a deployed Grafana. This module stands in for it:
the unit tests check every dashboard statically (structure, datasource references, template variables, PromQL
syntax through promtool, metric names the project exports), and the integration tests send every panel's query,
with its template variables substituted as Grafana would, to the live Prometheus of the stack and require data.

Pure Python on purpose: no Grafana client and no Airflow import, so any test or script can use it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from twinlayer.model.config import PROJECT_ROOT

DASHBOARDS_DIR = PROJECT_ROOT / "monitoring" / "grafana" / "dashboards"
PROVISIONING_DIR = PROJECT_ROOT / "monitoring" / "grafana" / "provisioning"
DATASOURCE_UID = "prometheus"  # the uid provisioning/datasources/prometheus.yml gives the Prometheus datasource
DATASOURCE_VARIABLE = "datasource"
DATASOURCE_REFS = ("${datasource}", "$datasource", DATASOURCE_UID)
PANEL_TYPES = frozenset({"timeseries", "stat", "gauge", "table", "bargauge"})

# Grafana's built-in variables, with the values an instant query of the live Prometheus gets in their place.
BUILTINS: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

# $name, ${name}, ${name:format}, [[name]] and [[name:format]]; names start with a letter or an underscore, so a
# capture group reference such as "$1" in label_replace is not taken for a variable.
_VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_]\w*)(?::[^}]*)?\}"
    r"|\[\[(?P<bracketed>[A-Za-z_]\w*)(?::[^\]]*)?\]\]"
    r"|\$(?P<plain>[A-Za-z_]\w*)"
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHER_OP = re.compile(r"(=~|!~|!=|=)\s*$")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])[A-Za-z_:][\w:]*")
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "and",
        "or",
        "unless",
        "atan2",
        "inf",
        "nan",
    }
)


@dataclasses.dataclass(frozen=True)
class PanelQuery:
    """One target of one panel: ``expr`` as written in the dashboard, ``promql`` ready for /api/v1/query."""

    dashboard: str  # the dashboard's uid
    panel: str  # the panel's title
    panel_id: int | None
    ref_id: str
    expr: str
    promql: str


# --- loading and walking -----------------------------------------------------------------------------------------


def dashboard_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or DASHBOARDS_DIR).glob("*.json"))


def load_dashboard(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_dashboards(directory: Path | None = None) -> dict[str, dict]:
    """Every dashboard in ``directory`` (default: monitoring/grafana/dashboards), by file name."""
    return {path.name: load_dashboard(path) for path in dashboard_files(directory)}


def iter_panels(dashboard: Mapping, include_rows: bool = False) -> Iterator[dict]:
    """Every panel of the dashboard in order, descending into the panels a collapsed row holds. Row panels
    themselves are yielded only with ``include_rows``."""

    def walk(panels) -> Iterator[dict]:
        for panel in panels or []:
            if panel.get("type") == "row":
                if include_rows:
                    yield panel
                yield from walk(panel.get("panels"))
            else:
                yield panel
                yield from walk(panel.get("panels"))  # library and legacy panels may nest too

    yield from walk(dashboard.get("panels"))


def template_variables(dashboard: Mapping) -> dict[str, dict]:
    """The dashboard's template variables by name."""
    return {v.get("name"): v for v in (dashboard.get("templating") or {}).get("list") or [] if v.get("name")}


# --- template variables in PromQL ----------------------------------------------------------------------------------


def _string_spans(expr: str) -> list[tuple[int, int, str | None]]:
    """(start, end, matcher operator or None) of every string literal of ``expr``."""
    spans = []
    for match in _STRING.finditer(expr):
        op = _MATCHER_OP.search(expr, 0, match.start())
        spans.append((match.start(), match.end(), op.group(1) if op else None))
    return spans


def variable_uses(expr: str) -> list[tuple[str, bool]]:
    """(name, in a regex matcher) for every template variable reference in ``expr``, built-ins included."""
    spans = _string_spans(expr)
    uses = []
    for match in _VARIABLE.finditer(expr):
        name = match.group("braced") or match.group("bracketed") or match.group("plain")
        in_regex = any(start < match.start() < end and op in ("=~", "!~") for start, end, op in spans)
        uses.append((name, in_regex))
    return uses


def expr_variables(expr: str) -> set[str]:
    """Names of the template variables ``expr`` uses, Grafana's built-ins left out."""
    return {name for name, _ in variable_uses(expr) if name not in BUILTINS}


def substitute(expr: str, dashboard: Mapping, variables: Mapping[str, str] | None = None) -> str:
    """``expr`` with every template variable replaced: a value given in ``variables`` is inserted as written (for a
    ``=~`` matcher it is a regex); a variable not given becomes its ``allValue`` (".*" when it has none) inside a
    regex matcher, and its current value elsewhere. Built-ins get the values of ``BUILTINS``; ``$datasource`` is
    left alone (it selects the Prometheus, it is not part of a query)."""
    variables = dict(variables or {})
    defined = template_variables(dashboard)
    spans = _string_spans(expr)

    def value(match: re.Match) -> str:
        name = match.group("braced") or match.group("bracketed") or match.group("plain")
        if name in variables:
            return variables[name]
        if name in BUILTINS:
            return BUILTINS[name]
        if name == DATASOURCE_VARIABLE:
            return match.group(0)
        definition = defined.get(name)
        if definition is None:
            raise ValueError(f"${name} is not a template variable of dashboard {dashboard.get('uid')!r}")
        if any(start < match.start() < end and op in ("=~", "!~") for start, end, op in spans):
            return definition.get("allValue") or ".*"
        current = (definition.get("current") or {}).get("value")
        if isinstance(current, str) and current and current != "$__all":
            return current
        raise ValueError(
            f"${name} is used outside a regex matcher and has no single current value: pass it in variables"
        )

    return _VARIABLE.sub(value, expr)


def panel_queries(dashboard: Mapping, variables: dict[str, str] | None = None) -> list[PanelQuery]:
    """Every target with an expression of every panel (nested ones included), with ``promql`` substituted."""
    queries = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if not expr:
                continue
            queries.append(
                PanelQuery(
                    dashboard=dashboard.get("uid", ""),
                    panel=panel.get("title", ""),
                    panel_id=panel.get("id"),
                    ref_id=target.get("refId", ""),
                    expr=expr,
                    promql=substitute(expr, dashboard, variables),
                )
            )
    return queries


# --- metric names ---------------------------------------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """The metric names (recording rules included) a PromQL expression selects by name. Selectors that name their
    metric only through ``__name__`` are not seen."""
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub("0", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group(0)
        if name.lower() in _KEYWORDS or re.match(r"\s*\(", text[match.end() :]):
            continue  # a keyword, or a function or aggregation called here
        names.add(name)
    return names


# --- checks --------------------------------------------------------------------------------------------------------


def _datasource_ok(ref) -> bool:
    if isinstance(ref, str):  # the legacy form: the datasource's name or a variable
        return ref in DATASOURCE_REFS
    return isinstance(ref, Mapping) and ref.get("type") == "prometheus" and ref.get("uid") in DATASOURCE_REFS


def check_dashboard(dashboard: Mapping) -> list[str]:
    """Problems that would make the dashboard fail to load, query the wrong datasource or show nothing; [] when
    there are none."""
    problems = []
    uid = dashboard.get("uid")
    where = f"dashboard {uid or dashboard.get('title') or '?'}"
    if not uid:
        problems.append(f"{where}: no uid")
    if not dashboard.get("title"):
        problems.append(f"{where}: no title")

    defined = template_variables(dashboard)
    ds_var = defined.get(DATASOURCE_VARIABLE)
    if ds_var is None or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        problems.append(f"{where}: no template variable {DATASOURCE_VARIABLE!r} of type datasource for prometheus")
    for name, variable in defined.items():
        if variable.get("type") == "query":
            if not _datasource_ok(variable.get("datasource")):
                problems.append(f"{where}: variable {name!r} does not use the ${DATASOURCE_VARIABLE} datasource")
            query = variable.get("query")
            if not (query.get("query") if isinstance(query, Mapping) else query):
                problems.append(f"{where}: variable {name!r} has no query")
            if variable.get("includeAll") and variable.get("allValue") in (None, ""):
                problems.append(f"{where}: variable {name!r} includes All without an allValue")

    seen_ids: set = set()
    for panel in iter_panels(dashboard, include_rows=True):
        title = panel.get("title")
        label = f"{where}, panel {panel.get('id')} {title!r}"
        if panel.get("id") is None:
            problems.append(f"{label}: no id")
        elif panel["id"] in seen_ids:
            problems.append(f"{label}: duplicate panel id {panel['id']}")
        seen_ids.add(panel.get("id"))
        if not title:
            problems.append(f"{label}: no title")
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{label}: gridPos incomplete")
        if panel.get("type") == "row":
            if not panel.get("collapsed") and panel.get("panels"):
                problems.append(f"{label}: an expanded row must not hold panels")
            continue
        if panel.get("type") not in PANEL_TYPES:
            problems.append(f"{label}: panel type {panel.get('type')!r} is not one of {sorted(PANEL_TYPES)}")
        if not panel.get("description"):
            problems.append(f"{label}: no description")
        if not ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit"):
            problems.append(f"{label}: no unit")
        if not _datasource_ok(panel.get("datasource")):
            problems.append(f"{label}: datasource {panel.get('datasource')!r} is not ${{{DATASOURCE_VARIABLE}}}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{label}: no targets")
        ref_ids = [t.get("refId") for t in targets]
        if any(not r for r in ref_ids):
            problems.append(f"{label}: a target without refId")
        if len(set(ref_ids)) != len(ref_ids):
            problems.append(f"{label}: duplicate refIds {ref_ids}")
        for target in targets:
            ref = target.get("refId")
            if "datasource" in target and not _datasource_ok(target["datasource"]):
                problems.append(
                    f"{label}, target {ref}: datasource {target['datasource']!r} is not ${{{DATASOURCE_VARIABLE}}}"
                )
            expr = target.get("expr")
            if not (isinstance(expr, str) and expr.strip()):
                problems.append(f"{label}, target {ref}: no expr")
                continue
            for name, in_regex in variable_uses(expr):
                if name in BUILTINS:
                    continue
                if name not in defined:
                    problems.append(f"{label}, target {ref}: ${name} is not a template variable")
                elif (defined[name].get("multi") or defined[name].get("includeAll")) and not in_regex:
                    problems.append(f"{label}, target {ref}: multi-value ${name} is used outside a =~ matcher")
    return problems
