"""Every tree fits its PostgreSQL with 30% to spare: the local one, Compose's, and each k8s overlay.

The budget is counted from the code (shared/budget.py builds each service and counts the pools and
LISTEN connections it made) under the configuration each tree actually gives it: the Procfile and
deploy/config/*.yaml, docker-compose.yml's environments, and each overlay's rendered pods with
their ConfigMap, at their autoscalers' maxima. The server's limit is the tree's own setting where
it has one (the CloudNativePG Cluster's max_connections), else PostgreSQL's default 100.
"""
import pathlib

import pytest
import yaml

from shared import budget
from shared import config as config_mod
from tests.unit.test_k8s_manifests import containers, environment, named, of_kind, render

ROOT = pathlib.Path(__file__).resolve().parents[2]
STOCK_MAX_CONNECTIONS = 100  # PostgreSQL's default, and Debian's
# `linli migrate` holds one connection (shared/migrations.py) while the release's Job runs.
MIGRATE_JOB = 1


def _fits(where, total, max_connections, per):
    allowed = budget.allowance(max_connections)
    assert total <= allowed, (f"{where} may hold {total} connections, more than the {allowed} that leave 30% of "
                              f"max_connections {max_connections} free: {per}")


# -- the census itself ------------------------------------------------------------------------------

def test_the_census_counts_the_worker_pool_and_each_background_connection():
    cfg = config_mod.load(str(ROOT / "deploy" / "config" / "local.yaml"), environ={})
    assert budget.census("registry", {**cfg, "DB_POOL_MAX": 3}) == {
        "registry-workers": 3, "relay-registry": 1, "LISTEN linli_outbox_registry": 1}
    assert budget.census("notification", {**cfg, "DB_POOL_MAX": 3}) == {
        "notification-workers": 3, "relay-notification": 1, "LISTEN linli_outbox_notification": 1,
        "sender-notification": 1, "LISTEN notification_deliveries": 1}
    assert budget.census("aggregator", {**cfg, "DB_POOL_MAX": 3})["aggregator-consumer"] == 1


def test_a_pool_is_no_larger_than_the_workers_that_use_it():
    cfg = {"DB_POOL_MAX": 8, "DB_POOL_SIZES": {"gateway": 3}}
    assert budget.worker_pool_size(cfg, "registry") == 8
    assert budget.worker_pool_size(cfg, "gateway") == 3
    assert budget.worker_pool_size({**cfg, "max_workers": 5}, "registry") == 5


# -- the local tree (make up) -------------------------------------------------------------------------

def test_the_local_tree_fits_a_stock_server():
    processes = budget.procfile(ROOT / "Procfile", str(ROOT / "deploy" / "config" / "local.yaml"))
    assert len(processes) == 17
    per = {name: budget.process_connections(service, cfg) for name, service, cfg in processes}
    _fits("the local tree (Procfile)", sum(per.values()), STOCK_MAX_CONNECTIONS, per)


def test_the_procfile_budget_follows_each_lines_own_config(tmp_path):
    """A line's LINLI_CONFIG and environment are what the process runs with, and so what is counted."""
    procfile = tmp_path / "Procfile"
    procfile.write_text("a: METRICS_PORT=9101 linli run registry\n"
                        f"b: LINLI_CONFIG={ROOT}/deploy/config/local-310110.yaml DB_POOL_MAX=7 linli run registry\n"
                        "# c: linli run points\n", encoding="utf-8")
    (a, _, a_cfg), (b, _, b_cfg) = budget.procfile(procfile, str(ROOT / "deploy" / "config" / "local.yaml"))
    assert (a, a_cfg["NODE_CODE"], a_cfg["DB_POOL_MAX"]) == ("a", "310110012", 2)
    assert (b, b_cfg["NODE_CODE"], b_cfg["DB_POOL_MAX"]) == ("b", "310110", 7)
    assert budget.total(budget.procfile(procfile, str(ROOT / "deploy" / "config" / "local.yaml"))) == 4 + 9


# -- docker-compose.yml ------------------------------------------------------------------------------------

def compose_processes(doc):
    processes, replicas = [], {}
    for name, svc in doc["services"].items():
        command = svc.get("command")
        if svc.get("image") != "linli:latest" or not (isinstance(command, list) and command[:1] == ["run"]):
            continue
        env = {k: str(v) for k, v in svc["environment"].items()}
        processes.append((name, command[1], config_mod.load(environ=env)))
        replicas[name] = svc.get("deploy", {}).get("replicas", 1)
    return processes, replicas


def compose_max_connections(doc):
    command = doc["services"]["postgres"].get("command") or []
    for i, arg in enumerate(command):
        if str(arg).startswith("max_connections=") and command[i - 1] == "-c":
            return int(str(arg).split("=", 1)[1])
    return STOCK_MAX_CONNECTIONS


def test_the_compose_tree_fits_its_server():
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    processes, replicas = compose_processes(doc)
    assert len(processes) == 17
    per = {name: budget.process_connections(service, cfg) * replicas[name] for name, service, cfg in processes}
    _fits("docker-compose.yml", sum(per.values()), compose_max_connections(doc), per)


# -- Kubernetes overlays ------------------------------------------------------------------------------------

def overlay_budget(objects):
    """{owner: connections} with every Deployment at its HPA's maximum (or its fixed replicas), and the Job."""
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"] for h in of_kind(objects, "HorizontalPodAutoscaler")}
    per = {}
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        replicas = hpas.get(name, deployment["spec"].get("replicas", 1))
        main = deployment["spec"]["template"]["spec"]["containers"][0]
        assert main["args"][0] == "run", name
        cfg = config_mod.load(environ=environment(objects, main))
        per[f"{name} x{replicas}"] = budget.process_connections(main["args"][1], cfg) * replicas
    for job in of_kind(objects, "Job"):
        per[f"Job/{job['metadata']['name']}"] = MIGRATE_JOB
    return per


def cluster_max_connections(objects):
    (cluster,) = named(objects, "Cluster").values()
    params = cluster["spec"].get("postgresql", {}).get("parameters", {})
    return int(params.get("max_connections", STOCK_MAX_CONNECTIONS))


@pytest.mark.parametrize("tree", ["street", "district", "city"])
def test_each_overlay_fits_its_database_at_the_autoscalers_maxima(tree):
    objects = render(tree)
    # The pods reach PostgreSQL directly (no PgBouncer Pooler): the budget has to fit as it is.
    assert not of_kind(objects, "Pooler")
    per = overlay_budget(objects)
    assert any(k.startswith("linli-gateway") for k in per)
    _fits(f"k8s/overlays/{tree}", sum(per.values()), cluster_max_connections(objects), per)


@pytest.mark.parametrize("tree", ["street", "district", "city"])
def test_every_overlay_pod_sizes_its_pools_from_the_configmap(tree):
    """A pod with no pool settings would take the code's defaults, which the budget above did not count."""
    objects = render(tree)
    for deployment in of_kind(objects, "Deployment"):
        for container in containers(deployment["spec"]["template"]["spec"]):
            env = environment(objects, container)
            assert {"DB_POOL_MAX", "DB_POOL_SIZES"} <= set(env), deployment["metadata"]["name"]


def test_the_budget_test_fails_a_tree_that_does_not_fit():
    """The pool sizes the overlays had before the budget (10 per process) do not fit the city's server."""
    objects = render("city")
    for cm in of_kind(objects, "ConfigMap"):
        cm["data"].update({"DB_POOL_MAX": "10", "DB_POOL_SIZES": "{}"})
    with pytest.raises(AssertionError, match="more than the 210"):
        _fits("city at 10 per pool", sum(overlay_budget(objects).values()), cluster_max_connections(objects), {})
