"""Settings and the rendered local-stack configuration (pure logic, no services)."""

import pytest

from twinlayer.localstack.services import Service, supervisord_conf
from twinlayer.model.config import Settings, load_settings
from twinlayer.ops.probes import check_process_only


def test_environment_overrides_ports_and_paths(tmp_path):
    settings = load_settings({"TWINLAYER_KAFKA_PORT": "19092", "TWINLAYER_STATE_DIR": str(tmp_path)})
    assert settings.kafka_port == 19092
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.state_dir == tmp_path
    assert settings.logs_dir == tmp_path / "logs"


def test_malformed_override_names_the_variable():
    with pytest.raises(ValueError, match="TWINLAYER_THRIFT_PORT must be an integer"):
        load_settings({"TWINLAYER_THRIFT_PORT": "ninety"})


def test_supervisord_programs_restart_and_stop_their_whole_group(tmp_path):
    settings = Settings(state_dir=tmp_path)
    url = "postgresql+psycopg2://u:p-w_d@127.0.0.1:5/db"  # pragma: allowlist secret
    env = {"K": "v", "J": '{"a": "b c"}', "URL": url, "Q": "it's"}
    svcs = [
        Service("alpha", ["/bin/echo", "a b", "100%"], check_process_only, env),
        Service("beta", ["/bin/true"], check_process_only),
    ]
    conf = supervisord_conf(settings, svcs)
    for name in ("alpha", "beta"):
        section = conf.split(f"[program:{name}]")[1].split("\n\n")[0]
        assert "autorestart=true" in section
        assert "stopasgroup=true" in section and "killasgroup=true" in section
        assert f"stdout_logfile={tmp_path / 'logs' / (name + '.log')}" in section
    assert 'command=/bin/echo "a b" 100%%' in conf
    from supervisor.datatypes import dict_of_key_value_pairs

    alpha = conf.split("[program:alpha]")[1].split("\n\n")[0]
    line = next(x for x in alpha.splitlines() if x.startswith("environment="))
    assert dict_of_key_value_pairs(line.removeprefix("environment=")) == env


def test_a_refusal_that_needs_a_person_is_not_restarted_into_a_loop(tmp_path):
    settings = Settings(state_dir=tmp_path)
    conf = supervisord_conf(settings, [Service("gamma", ["/bin/true"], check_process_only, final_exit_codes=(3,))])
    section = conf.split("[program:gamma]")[1].split("\n\n")[0]
    assert "autorestart=unexpected" in section and "exitcodes=3" in section
    assert "autorestart=true" not in section


def test_a_background_service_runs_under_nice_with_its_own_command(tmp_path):
    from twinlayer.localstack.services import BACKGROUND

    settings = Settings(state_dir=tmp_path)
    svcs = [
        Service("delta", ["/bin/true", "x"], check_process_only, nice=BACKGROUND),
        Service("epsilon", ["/bin/echo"], check_process_only),
    ]
    conf = supervisord_conf(settings, svcs)
    assert f"command=nice -n {BACKGROUND} /bin/true x" in conf
    assert "command=/bin/echo\n" in conf


def test_every_python_file_of_the_project_compiles():
    """Modules no unit test imports (the demo, DAGs, docker scripts, benchmarks) still parse on this Python."""
    from twinlayer.model.config import PROJECT_ROOT

    files = [
        p
        for folder in ("include", "dags", "spark_jobs", "docker", "benchmarks", "tests", "scripts")
        for p in (PROJECT_ROOT / folder).rglob("*.py")
    ]
    assert len(files) > 40
    for path in files:
        compile(path.read_text(), str(path), "exec")


def test_kafka_cluster_ids_never_read_as_an_option():
    from twinlayer.localstack.services import kafka_cluster_id

    ids = [kafka_cluster_id() for _ in range(3000)]  # one id in 64 would start with '-' if nothing prevented it
    assert len(set(ids)) == len(ids) and not any(i.startswith("-") for i in ids)


def test_airflow_connections_override_the_endpoints_they_name_and_are_created_from_the_settings():
    from twinlayer.model.config import CONNECTIONS, connection_specs, with_endpoints

    settings = Settings(thrift_port=9090, kafka_host="broker")
    changed = with_endpoints(settings, {"twinlayer_hbase": ("hbase-gw", 9191), "twinlayer_kafka": (None, 29092)})
    assert (changed.host_of("thrift_port"), changed.thrift_port) == ("hbase-gw", 9191)
    assert changed.kafka_bootstrap == "broker:29092"  # an empty host keeps the setting
    assert changed.pushgateway_port == settings.pushgateway_port
    specs = {spec["connection_id"]: spec for spec in connection_specs(changed)}
    assert set(specs) == set(CONNECTIONS)
    assert (specs["twinlayer_hbase"]["host"], specs["twinlayer_hbase"]["port"]) == ("hbase-gw", 9191)
    again = with_endpoints(Settings(), {cid: (s["host"], s["port"]) for cid, s in specs.items()})
    assert [again.address(port) for port, _ in CONNECTIONS.values()] == [
        changed.address(port) for port, _ in CONNECTIONS.values()
    ]
