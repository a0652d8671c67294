"""The Lambda page's HTML: the overview of both layers as one table of hours, with the page's actions.

Rendered on the server from ``ops.overview`` (no front-end build); every value from the stores is escaped. Each
action (recompute, roll back, backfill) asks for confirmation on the page itself (Airflow's frame allows no browser
dialogs), then posts JSON to the plugin's API, which checks the Airflow user's rights; the page shows the answer.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from twinlayer.model.config import Settings

DASHBOARDS = {
    "Lambda overview": "twinlayer-overview",
    "Speed layer": "twinlayer-speed",
    "Batch layer": "twinlayer-batch",
    "Business view": "twinlayer-business",
}


def links(settings: Settings) -> dict[str, str]:
    """The Grafana dashboards of both layers (``grafana_url``) and the serving API's docs."""
    grafana = settings.grafana_url.rstrip("/")
    return {
        **{name: f"{grafana}/d/{uid}" for name, uid in DASHBOARDS.items()},
        "Serving API docs": f"{settings.url('serving_port')}/docs",
    }


STYLE = """
body{font-family:system-ui,sans-serif;margin:16px;color:#1a202c;font-size:14px}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #e2e8f0;padding:4px 6px;text-align:left;
vertical-align:top;white-space:nowrap} th{background:#f7fafc;font-weight:600} td.drift{white-space:normal}
.ok{color:#2f855a} .bad{color:#c53030}
.muted{color:#718096} .facts span{margin-right:18px} .warn{background:#fffbea;border:1px solid #f6e05e;padding:6px}
button{cursor:pointer;margin:1px} #message{min-height:20px;margin:8px 0;font-weight:600}
#confirm{background:#ebf8ff;border:1px solid #90cdf4;padding:8px;margin:8px 0}
"""

SCRIPT = """
let pending = null;
function ask(question, action) {
  pending = action;
  document.getElementById('question').textContent = question;
  document.getElementById('confirm').hidden = false;
}
async function post(path, body) {
  const message = document.getElementById('message');
  message.textContent = 'working…';
  message.className = '';
  const response = await fetch(path, {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const answer = await response.json().catch(() => ({detail: response.statusText}));
  message.textContent = response.ok ? answer.message : 'refused: ' + (answer.detail || response.status);
  message.className = response.ok ? 'ok' : 'bad';
}
document.addEventListener('click', (event) => {
  if (event.target.id === 'confirm-yes' || event.target.id === 'confirm-no') {
    document.getElementById('confirm').hidden = true;
    const action = pending;
    pending = null;
    if (event.target.id === 'confirm-yes' && action) action();
    return;
  }
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const hour = button.dataset.hour;
  if (button.dataset.action === 'recompute')
    ask(`Recompute ${hour}? A run of twinlayer_recompute gates, recomputes and publishes the hour.`,
        () => post(`api/hours/${hour}/recompute`, {}));
  if (button.dataset.action === 'rollback')
    ask(`Roll ${hour} back to version ${button.dataset.previous}?`, () => post(`api/hours/${hour}/rollback`, {}));
  if (button.dataset.action === 'backfill') {
    const from = document.getElementById('backfill-from').value, to = document.getElementById('backfill-to').value;
    const reprocess = document.getElementById('backfill-reprocess').checked;
    ask(`Backfill twinlayer_recompute from ${from} to ${to}${reprocess ? ', recomputing published hours' : ''}?`,
        () => post('api/backfills', {from_hour: from, to_hour: to, reprocess}));
  }
});
"""


def _when(ms: int | float | None) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _figure(value: float | None, unit: str, digits: int = 1) -> str:
    return "no data" if value is None else f"{value:,.{digits}f}{unit}"


def _gates(gates: dict[str, dict]) -> str:
    cells = []
    for name, fact in sorted(gates.items()):
        mark = '<span class="ok">✓</span>' if fact["success"] else '<span class="bad">✗</span>'
        title = escape("; ".join(fact.get("failures", [])), quote=True)
        cells.append(f'<span title="{title}">{escape(name)} {mark}</span>')
    return " ".join(cells) or '<span class="muted">—</span>'


def _drift(drift: dict[str, dict[str, float]], version: int | None) -> str:
    parts = [
        f"{escape(view)}.{escape(measure)} {ratio:.2%}"
        for view, measures in sorted(drift.items())
        for measure, ratio in sorted(measures.items())
    ]
    measured = f'<br><span class="muted">of version {escape(str(version))}</span>' if parts and version else ""
    return "<br>".join(parts) + measured or '<span class="muted">—</span>'


def hour_table(hours: list[dict[str, Any]], actions: bool = True) -> str:
    head = (
        "<tr><th>Hour (UTC)</th><th>Archived</th><th>Served from</th><th>Version</th><th>Before it</th>"
        "<th>Gates</th><th>Drift</th><th>Late records</th><th>Speed cells</th>"
        + ("<th></th>" if actions else "")
        + "</tr>"
    )
    rows = []
    for h in hours:
        speed = {True: "held", False: "none", None: '<span class="muted">—</span>'}[h["speed_cells"]]
        late = f'<span class="bad">{int(h["late_records"]):,}</span>' if h["late_records"] else "0"
        version = "—" if h["version"] is None else escape(str(h["version"]))
        if h["rolled_back_from"]:
            version += f' <span class="muted">(rolled back from {escape(str(h["rolled_back_from"]))})</span>'
        previous = [escape(str(v)) for v in h["previous"]]
        buttons = f'<button data-action="recompute" data-hour="{escape(h["hour"])}">Recompute</button>'
        if previous:
            buttons += (
                f'<button data-action="rollback" data-hour="{escape(h["hour"])}" '
                f'data-previous="{previous[0]}">Roll back</button>'
            )
        rows.append(
            f'<tr data-hour="{escape(h["hour"])}"><td>{escape(h["hour"])}</td><td>{int(h["archived"]):,}</td>'
            f"<td>{escape(h['source'])}</td><td>{version}</td>"
            f"<td>{', '.join(previous) or '—'}</td><td>{_gates(h['gates'])}</td>"
            f'<td class="drift">{_drift(h["drift"], h["drift_version"])}</td><td>{late}</td><td>{speed}</td>'
            + (f"<td>{buttons}</td>" if actions else "")
            + "</tr>"
        )
    empty = '<tr><td colspan="10" class="muted">no hour archived or published in this range</td></tr>'
    return f"<table><thead>{head}</thead><tbody>{''.join(rows) or empty}</tbody></table>"


def _document(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style>'
        f"</head><body>{body}<script>{SCRIPT}</script></body></html>"
    )


def lambda_page(overview: dict[str, Any], links: dict[str, str], paused: bool | None, days: int) -> str:
    speed = overview["speed"]
    facts = (
        f'<div class="facts"><span>Time boundary: <b>{_when(overview["boundary_ms"])}</b></span>'
        f"<span>Speed layer lag: <b>{_figure(speed['kafka_lag_records'], ' records', 0)}</b></span>"
        f"<span>Freshness p50 / p99: <b>{_figure(speed['freshness_p50_seconds'], ' s')}</b> / "
        f"<b>{_figure(speed['freshness_p99_seconds'], ' s')}</b></span>"
        f"<span>Boundary lag: <b>{_figure(speed['boundary_lag_seconds'], ' s', 0)}</b></span></div>"
    )
    warning = (
        '<p class="warn">twinlayer_recompute is paused: a recompute or backfill started here waits until it is '
        "unpaused.</p>"
        if paused
        else ""
    )
    link_list = " · ".join(f'<a href="{escape(url, quote=True)}">{escape(name)}</a>' for name, url in links.items())
    backfill = (
        '<h2>Backfill</h2><label>From hour <input id="backfill-from" placeholder="2026-12-01T00" size="14"></label> '
        '<label>to hour <input id="backfill-to" placeholder="2026-12-01T05" size="14"></label> '
        '<label><input id="backfill-reprocess" type="checkbox"> recompute published hours too</label> '
        '<button data-action="backfill">Backfill</button>'
    )
    body = (
        f"<h1>Lambda: both layers, hour by hour</h1>{facts}<p>{link_list}</p>{warning}"
        f'<div id="confirm" role="alertdialog" hidden><span id="question"></span> '
        '<button id="confirm-yes">Confirm</button> <button id="confirm-no">Cancel</button></div>'
        f'<div id="message" role="status"></div>{backfill}'
        f"<h2>Hours of the last {days} days</h2><p>Show the last "
        + " · ".join(f'<a href="lambda?days={n}">{n} day{"s" if n > 1 else ""}</a>' for n in (1, 2, 7))
        + f"</p>{hour_table(overview['hours'])}"
    )
    return _document("Lambda", body)


def run_page(dag_id: str, run: dict[str, Any] | None, hour: dict[str, Any] | None, hour_label: str | None) -> str:
    if run is None or hour_label is None:
        body = f"<p>This run of {escape(dag_id)} recomputes no hour of twinlayer.</p>"
    else:
        rows = hour_table([hour], actions=False) if hour else '<p class="muted">the hour is not archived</p>'
        body = (
            f"<h1>Hour {escape(hour_label)}</h1><p>Run {escape(run['dag_run_id'])}: {escape(str(run['state']))}, "
            f"data interval {escape(str(run['data_interval_start']))} → {escape(str(run['data_interval_end']))}</p>"
            f"{rows}"
        )
    return _document("Lambda · run", body)
