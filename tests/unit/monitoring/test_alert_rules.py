"""The monitoring configuration as code: Prometheus rules and their promtool unit tests, the rendered Prometheus
config, Alertmanager's config and routing (amtool), and the runbook every alert points to. No service runs here."""

import re
import subprocess

import pytest
import yaml

from tests.tools import installed
from twinlayer.localstack.services import MONITORING, render
from twinlayer.model.config import PROJECT_ROOT, Settings

RULES = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
ALERTMANAGER = MONITORING / "alertmanager" / "alertmanager.yml"
RUNBOOK = PROJECT_ROOT / "docs" / "runbook.md"

promtool, amtool = "promtool", "amtool"


def run(tool, *args):
    result = subprocess.run([installed(tool), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def alert_rules():
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def local_jobs(tmp_path):
    target = tmp_path / "prometheus.yml"
    render("prometheus.yml", Settings(), target, rules_dir=MONITORING / "prometheus" / "rules")
    return target, {job["job_name"] for job in yaml.safe_load(target.read_text())["scrape_configs"]}


def test_rule_files_pass_promtool_check():
    assert RULES
    assert "SUCCESS" in run(promtool, "check", "rules", *map(str, RULES))


def test_alert_rules_pass_their_promtool_unit_tests():
    assert "SUCCESS" in run(promtool, "test", "rules", str(MONITORING / "prometheus" / "tests" / "alerts.test.yml"))


def test_every_alert_is_unit_tested_firing_and_quiet():
    tests = yaml.safe_load((MONITORING / "prometheus" / "tests" / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for rule in alert_rules():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} is never tested firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} is never tested quiet"


def test_rendered_prometheus_config_passes_promtool(tmp_path):
    target, _ = local_jobs(tmp_path)
    assert "SUCCESS" in run(promtool, "check", "config", str(target))


def test_every_alert_carries_for_severity_summary_description_and_a_runbook_section():
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in alert_rules():
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert {"layer", "kind"} <= rule["labels"].keys(), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/runbook.md#") and url.split("#")[1] in anchors, (rule["alert"], url)


def test_every_scraped_job_has_an_absent_alert(tmp_path):
    _, jobs = local_jobs(tmp_path)
    absent = {m for rule in alert_rules() for m in re.findall(r'absent\(up\{job="([^"]+)"\}', rule["expr"])}
    assert jobs == absent


def test_alertmanager_config_passes_amtool():
    assert "SUCCESS" in run(amtool, "check-config", str(ALERTMANAGER))


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=SpeedLayerDown"], "oncall"),
        (["severity=warning", "alertname=BatchDriftHigh"], "team"),
        (["severity=info", "alertname=Unrouted"], "team"),
    ],
)
def test_alerts_route_by_severity(labels, receiver):
    out = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert out.splitlines()[0].strip() == receiver


def test_inhibitions_silence_symptoms_of_a_dead_dependency_and_every_receiver_reaches_the_alert_log():
    config = yaml.safe_load(ALERTMANAGER.read_text())
    sources = [" ".join(rule["source_matchers"]) for rule in config["inhibit_rules"]]
    assert any("SpeedLayerDown" in s for s in sources) and any("KafkaDown" in s for s in sources)
    targets = {alert["alert"] for alert in alert_rules() if alert["labels"]["kind"] == "symptom"}
    assert targets and all(rule["target_matchers"] for rule in config["inhibit_rules"])
    port = Settings().alert_log_port
    for receiver in config["receivers"]:
        urls = [hook["url"] for hook in receiver["webhook_configs"]]
        assert urls == [f"http://127.0.0.1:{port}/receivers/{receiver['name']}"]
        assert all(hook["send_resolved"] for hook in receiver["webhook_configs"])
