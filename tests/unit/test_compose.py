"""docker-compose.yml runs a district and two streets: checked by construction, without a Docker engine.

The file is validated against the Compose Specification's JSON Schema (vendored in tests/schemas/),
then its wiring is checked against the files it mounts and the code it runs: each instance's
vhost, database and keys, the keys the district and the streets hold of each other, the broker's
definitions (vhosts, user, password hash, plugins), the PostgreSQL init script, the start-up
order, health checks, published ports, Prometheus's targets and rules, and the Grafana
dashboard's metrics.
"""
import base64
import hashlib
import json
import pathlib
import re
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import yaml

from services.aggregator import figures
from shared import config as config_mod
from shared import federation
from shared.facts import Signer
from tests.unit.test_alert_rules import exported

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "schemas" / "compose-spec.json"
DEPLOY = ROOT / "deploy"

ALL_SERVICES = {"registry", "points", "consultation", "notification", "aggregator", "gateway"}
# The tree the file runs (README, "With a Docker engine"): instance -> level, code, gateway host port, services.
INSTANCES = {
    "district-310110": ("district", "310110", 8010, ALL_SERVICES - {"points"}),
    "street-310110012": ("street", "310110012", 8000, ALL_SERVICES),
    "street-310110013": ("street", "310110013", 8001, ALL_SERVICES),
}
DISTRICT = "district-310110"
STREETS = ("street-310110012", "street-310110013")
METRICS_PORTS = {"registry": 9101, "points": 9102, "consultation": 9103, "notification": 9104, "aggregator": 9105}
# Settings that differ between the containers of one instance; everything else is the instance's.
PER_SERVICE = {"METRICS_PORT", "HEALTH_PORT", "WEB_SERVER_ADDRESS"}
LINLI_IMAGE = "linli:latest"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def services(doc):
    return doc["services"]


def linli(doc):
    """{name: service} of every container running the Linli image."""
    return {n: s for n, s in services(doc).items() if s.get("image") == LINLI_IMAGE}


def long_running(doc):
    """[(container name, service, Linli service name, environment)] of every `linli run <service>`."""
    return [(n, s, s["command"][1], s["environment"]) for n, s in linli(doc).items()
            if isinstance(s.get("command"), list) and s["command"][:1] == ["run"]]


def jobs(doc):
    return {n: s for n, s in services(doc).items() if s.get("restart") == "no"}


def script(service):
    """A job's shell line (entrypoint sh -c, the line as the command)."""
    assert service.get("entrypoint") == ["sh", "-c"], service
    return " ".join(service["command"]) if isinstance(service["command"], list) else service["command"]


def serving_port(name, linli_service, env):
    """Where a Linli container serves /metrics and /healthz: METRICS_PORT, or the gateway's HTTP port."""
    if linli_service == "gateway":
        return int(env["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1])
    return int(env["METRICS_PORT"])


def mounts(service):
    """{container path: host path or volume name} of a service's short-syntax volumes."""
    found = {}
    for volume in service.get("volumes", []):
        assert isinstance(volume, str), volume
        parts = volume.split(":")
        found[parts[1]] = parts[0]
    return found


def published(service):
    """{host port: container port} of a service's short-syntax ports ([ip:]host:container)."""
    found = {}
    for port in service.get("ports", []):
        assert isinstance(port, str), port
        parts = port.split(":")
        found[int(parts[-2])] = int(parts[-1])
    return found


def vhost(uri):
    return unquote(urlsplit(uri).path[1:])


def strings(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield node


def rabbit_hash_matches(password_hash, password):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + SHA-256(salt + UTF-8 password)), 4-byte salt."""
    raw = base64.b64decode(password_hash)
    return len(raw) == 36 and hashlib.sha256(raw[:4] + password.encode("utf-8")).digest() == raw[4:]


def test_the_file_is_valid_against_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    # Compose interpolates ${VAR} and $VAR in every value; a literal dollar must be written $$.
    for text in strings(compose):
        assert "$" not in text.replace("$$", ""), f"unescaped $ (Compose would interpolate it): {text[:80]}"


def test_every_service_has_a_health_check_or_is_a_one_shot_job(compose):
    oneshots = jobs(compose)
    for name, service in services(compose).items():
        check = service.get("healthcheck") or {}
        if name in oneshots:
            continue
        assert service.get("restart") in ("unless-stopped", "always"), name
        assert not check.get("disable") and check.get("test"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert set(oneshots) == {f"setup-{i}" for i in INSTANCES} | {"link"}
    for name, service, linli_service, env in long_running(compose):
        # The image's check reads HEALTH_PORT: it must be where this container serves /healthz.
        test = " ".join(service["healthcheck"]["test"])
        assert "/healthz" in test, name
        assert int(env["HEALTH_PORT"]) == serving_port(name, linli_service, env), name
        assert "HEALTH_PORT" in test or f":{env['HEALTH_PORT']}/" in test, name


def test_every_long_running_service_restarts_unless_stopped_and_only_the_one_shot_jobs_do_not(compose):
    # Issue 17: one process exiting must not leave it, or anything else, down. Docker restarts a
    # container with `unless-stopped` whatever its exit code, with back-off, until it is stopped by
    # hand; `always` would also bring back a container stopped by hand when the engine restarts.
    oneshots = {f"setup-{i}" for i in INSTANCES} | {"link"}
    for name, service in services(compose).items():
        if name in oneshots:
            # A job that finished would be started again and again; the services wait for it instead.
            assert service["restart"] == "no", name
            assert service["entrypoint"] == ["sh", "-c"], name
        else:
            assert service.get("restart") == "unless-stopped", name
    running = {name for name, _, _, _ in long_running(compose)}
    assert len(running) == sum(len(services_) for _, _, _, services_ in INSTANCES.values()) == 17
    assert {"postgres", "rabbitmq", "prometheus", "grafana"} | running == set(services(compose)) - oneshots


def test_every_dependency_exists_and_the_services_wait_for_their_setup_and_the_link(compose):
    every = services(compose)
    oneshots = jobs(compose)
    for name, service in every.items():
        for target, how in (service.get("depends_on") or {}).items():
            assert target in every, f"{name} depends on {target}, which is not a service"
            if how["condition"] == "service_healthy":
                assert not every[target].get("healthcheck", {}).get("disable"), f"{name} waits for {target}'s health"
            if how["condition"] == "service_completed_successfully":
                assert target in oneshots, f"{name} waits for {target} to complete, but it keeps running"
    # No cycles: Compose would refuse to start.
    state = {}

    def visit(name, path):
        assert state.get(name) != "open", f"dependency cycle: {' -> '.join(path + [name])}"
        if state.get(name) is None:
            state[name] = "open"
            for target in every[name].get("depends_on") or {}:
                visit(target, path + [name])
            state[name] = "done"
    for name in every:
        visit(name, [])

    completed = {"condition": "service_completed_successfully"}
    for name, service, _, env in long_running(compose):
        assert service["depends_on"].get(f"setup-{env['INSTANCE']}") == completed, name
        assert service["depends_on"].get("link") == completed, name
    for instance, (level, _, _, _) in INSTANCES.items():
        setup = every[f"setup-{instance}"]
        assert setup["environment"]["INSTANCE"] == instance
        assert setup["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                       "rabbitmq": {"condition": "service_healthy"}}
        steps = [s.strip() for s in script(setup).split("&&")]
        assert steps[:2] == ["linli migrate", "linli topology apply"], steps
        assert steps[2:] == ["linli demo load"], steps     # a district's holds the tree, no people
        assert every["link"]["depends_on"][f"setup-{instance}"] == completed
    # What a service mounts is in the repository; what it names as a volume is declared.
    for name, service in every.items():
        for target, source in mounts(service).items():
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in (compose.get("volumes") or {}), f"{name} uses undeclared volume {source}"


def test_each_instance_runs_its_services_and_publishes_its_gateway(compose):
    by_instance = {}
    for name, service, linli_service, env in long_running(compose):
        by_instance.setdefault(env["INSTANCE"], []).append(linli_service)
        assert name == f"{env['INSTANCE']}-{linli_service}", name
        if linli_service != "gateway":
            assert int(env["METRICS_PORT"]) == METRICS_PORTS[linli_service], name
    assert {i: sorted(s) for i, s in by_instance.items()} == {i: sorted(v[3]) for i, v in INSTANCES.items()}
    for instance, (_, _, host_port, _) in INSTANCES.items():
        gateway = services(compose)[f"{instance}-gateway"]
        assert published(gateway) == {host_port: serving_port(None, "gateway", gateway["environment"])}, instance
    hosts = [p for s in services(compose).values() for p in published(s)]
    assert len(hosts) == len(set(hosts)), f"a host port is published twice: {sorted(hosts)}"


def test_each_instance_has_its_own_vhost_database_and_secrets(compose):
    settings = {}
    for name, service in linli(compose).items():
        env = service["environment"]
        instance = env["INSTANCE"]
        level, code, _, _ = INSTANCES[instance]
        assert (env["LEVEL"], env["NODE_CODE"]) == (level, code), name
        assert vhost(env["AMQP_URI"]) == instance, name
        assert urlsplit(env["DATABASE_URL"]).path == "/linli_" + instance.replace("-", "_"), name
        assert vhost(env["RABBIT_MANAGEMENT_URL"]) == "", name
        cfg = config_mod.load(environ=env)  # raises ConfigError, naming each bad key
        assert cfg["INSTANCE"] == instance
        own = {k: v for k, v in env.items() if k not in PER_SERVICE}
        assert settings.setdefault(instance, own) == own, f"{name} differs from the rest of {instance}"
    assert set(settings) == set(INSTANCES)
    for key in ("AMQP_URI", "DATABASE_URL", "SIGNING_KEY", "PSEUDONYM_SECRET", "DATA_ENCRYPTION_KEY"):
        assert len({s[key] for s in settings.values()}) == len(INSTANCES), f"{key} is shared between instances"
    assert len({s["HANDOVER_SECRET"] for s in settings.values()}) == 1, "HANDOVER_SECRET is city-wide"


def test_the_streets_and_the_district_hold_each_others_public_keys(compose):
    env = {e["INSTANCE"]: e for _, _, _, e in long_running(compose)}
    district_key = Signer(env[DISTRICT]["SIGNING_KEY"]).public_key
    assert not env[DISTRICT].get("PARENT_KEY"), "the district has no level above in this tree"
    for street in STREETS:
        assert env[street]["PARENT_KEY"] == district_key, f"{street} does not trust the district's key"

    link = services(compose)["link"]
    assert link["environment"]["INSTANCE"] == DISTRICT, "`child add` runs at the district"
    line = script(link)
    added = {m["code"]: (m["key"], m["uri"], m["parent_uri"]) for m in re.finditer(
        r"linli child add --code (?P<code>\d+) --public-key (?P<key>\S+) --amqp-uri (?P<uri>\S+)"
        r" --parent-amqp-uri (?P<parent_uri>\S+)", line)}
    assert len(added) == line.count("child add")
    assert set(added) == {INSTANCES[s][1] for s in STREETS}
    for street in STREETS:
        key, uri, parent_uri = added[INSTANCES[street][1]]
        assert key == Signer(env[street]["SIGNING_KEY"]).public_key, f"the district holds a wrong key for {street}"
        assert vhost(uri) == vhost(env[street]["AMQP_URI"]), f"the district federates with the wrong vhost for {street}"
        assert vhost(parent_uri) == vhost(env[DISTRICT]["AMQP_URI"]), f"{street} takes directives from the wrong vhost"


def test_the_broker_definitions_declare_the_vhosts_and_the_user_the_services_use(compose):
    # The scheme itself, against RabbitMQ's documented example (salt 908DC60A, password test12).
    assert rabbit_hash_matches("kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR", "test12")
    definitions = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text(encoding="utf-8"))
    users = {u["name"]: u for u in definitions["users"]}
    granted = {(p["user"], p["vhost"]): (p["configure"], p["write"], p["read"]) for p in definitions["permissions"]}
    uris = [s["environment"][k] for s in linli(compose).values() for k in ("AMQP_URI", "RABBIT_MANAGEMENT_URL")]
    uris += re.findall(r"amqps?://\S+", script(services(compose)["link"]))
    declared = {v["name"] for v in definitions["vhosts"]}
    assert declared == {vhost(u) for u in uris if u.startswith("amqp")} == set(INSTANCES)
    for uri in uris:
        parts = urlsplit(uri)
        assert parts.hostname == "rabbitmq", uri
        user = users.get(unquote(parts.username))
        assert user, f"{parts.username} is not in definitions.json (no default user exists with definitions)"
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        assert rabbit_hash_matches(user["password_hash"], unquote(parts.password)), f"{uri}: wrong password"
        if parts.scheme == "http":
            # `topology apply` sets permissions, `child add` upstreams and policies: an administrator's work.
            assert "administrator" in user["tags"], uri
        elif parts.username.startswith("link-"):
            # A federation link runs as its own user, allowed what `linli link-user add` allows and no more.
            _, reader, on = parts.username.split("-", 2)
            assert on == vhost(uri) and not user["tags"], uri
            reads = federation.PARENT_READS if INSTANCES[on][1].startswith(reader) else federation.CHILD_READS
            reader_vhost = next(name for name, spec in INSTANCES.items() if spec[1] == reader)
            assert granted.get((parts.username, vhost(uri))) == tuple(
                federation.link_permissions(reads, reader_vhost)[k] for k in ("configure", "write", "read")), uri
        else:
            assert granted.get((parts.username, vhost(uri))) == (".*", ".*", ".*"), uri

    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text(encoding="utf-8").strip()
    assert plugins.startswith("[") and plugins.endswith("].")
    enabled = {p.strip() for p in plugins[1:-2].split(",")}
    assert {"rabbitmq_management", "rabbitmq_federation", "rabbitmq_prometheus"} <= enabled

    rabbitmq = mounts(services(compose)["rabbitmq"])
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text(encoding="utf-8")
    loaded = re.search(r"^load_definitions\s*=\s*(\S+)", conf, re.MULTILINE).group(1)
    assert rabbitmq[loaded] == "./deploy/rabbitmq/definitions.json"
    assert rabbitmq["/etc/rabbitmq/rabbitmq.conf"] == "./deploy/rabbitmq/rabbitmq.conf"
    assert rabbitmq["/etc/rabbitmq/enabled_plugins"] == "./deploy/rabbitmq/enabled_plugins"


def test_postgres_creates_the_database_of_every_instance(compose):
    postgres = services(compose)["postgres"]
    init = mounts(postgres)["/docker-entrypoint-initdb.d"]
    created = set()
    for sql in sorted((ROOT / init).glob("*.sql")):
        created |= set(re.findall(r"^\s*CREATE DATABASE (\w+);", sql.read_text(encoding="utf-8"), re.MULTILINE))
    for name, service in linli(compose).items():
        url = urlsplit(service["environment"]["DATABASE_URL"])
        assert url.hostname == "postgres", name
        assert (url.username, url.password) == (postgres["environment"]["POSTGRES_USER"],
                                                postgres["environment"]["POSTGRES_PASSWORD"]), name
        assert url.path[1:] in created, f"{name}: nothing creates database {url.path[1:]}"


def test_prometheus_scrapes_every_service_container_and_loads_the_alert_rules(compose):
    prometheus = services(compose)["prometheus"]
    volumes = mounts(prometheus)
    assert volumes["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        for group in job["static_configs"]:
            for target in group["targets"]:
                targets[target] = group.get("labels", {})
    for name, service, linli_service, env in long_running(compose):
        target = f"{name}:{serving_port(name, linli_service, env)}"
        assert target in targets, f"Prometheus does not scrape {target}"
        assert targets[target] == {"instance": env["INSTANCE"], "service": linli_service}, target
    assert "rabbitmq:15692" in targets
    assert len(targets) == len(long_running(compose)) + 1
    for target in targets:
        assert target.rsplit(":", 1)[0] in services(compose), f"{target} is not a service of the compose file"
    rules = [volumes.get(f if f.startswith("/") else f"/etc/prometheus/{f}") for f in config["rule_files"]]
    assert rules == ["./deploy/prometheus/alerts.yml"]


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_the_dashboard_shows_the_headlines_and_health_signals_from_exported_metrics(compose):
    grafana = mounts(services(compose)["grafana"])
    provisioning = ROOT / grafana["/etc/grafana/provisioning"]
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    assert urlsplit(source["url"]).netloc == "prometheus:9090" and "prometheus" in services(compose)
    providers = yaml.safe_load((provisioning / "dashboards" / "linli.yml").read_text(encoding="utf-8"))["providers"]
    (folder,) = [p["options"]["path"] for p in providers]
    dashboard = json.loads((ROOT / grafana[folder] / "linli.json").read_text(encoding="utf-8"))

    exprs = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == source["uid"], panel["title"]
            exprs.append(target["expr"])
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]
        exprs.append(query["query"] if isinstance(query, dict) else query)
        if variable["name"] == "parent":
            assert variable["current"]["value"] == DISTRICT

    known = exported()
    named = set()
    for expr in exprs:
        for name in re.findall(r"\blinli_[a-z_]+", expr):
            assert name in known, f"the dashboard names {name}, which no service exports: {expr}"
            named.add(name)
    assert {"linli_rollup_headline", "linli_node_info", "linli_outbox_backlog", "linli_outbox_oldest_age_seconds",
            "linli_dead_letter_messages", "linli_federation_link_up", "linli_aggregator_rejected_batches_total",
            "linli_notification_deliveries_total"} <= named
    assert any(re.search(r"\bup\{", e) for e in exprs), "no panel shows whether the services are up"

    # Headline panels name their nodes from the registries' linli_node_info, for any tree: no
    # panel carries a list of the demo's node names.
    for panel in panels(dashboard):
        if any("linli_rollup_headline{" in t["expr"] for t in panel.get("targets", [])):
            assert not panel.get("fieldConfig", {}).get("overrides"), panel["title"]
            for target in panel["targets"]:
                assert "group_left (name)" in target["expr"] and "linli_node_info" in target["expr"], panel["title"]
                assert "{{name}}" in target["legendFormat"], panel["title"]

    # The headline panels ask for figures the aggregator exports (figures.headlines), all of them.
    shown = set()
    for expr in (e for e in exprs if "linli_rollup_headline{" in e):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', expr.split("linli_rollup_headline{", 1)[1].split("}", 1)[0]))
        assert labels["metric"] in figures.HEADLINE_STOCKS + figures.HEADLINE_FLOWS, expr
        assert labels["measure"] in ("count", "total"), expr
        shown.add(labels["metric"])
    assert shown == set(figures.HEADLINE_STOCKS + figures.HEADLINE_FLOWS)
