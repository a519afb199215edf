"""The Kubernetes manifests, rendered as `kubectl kustomize` renders them, are valid and say what we mean.

Each of k8s/base and the street, district and city overlays is rendered with kubectl's kustomize.
Every built-in object must match the Kubernetes 1.30 schemas (kubernetes-validate, strict: an
unknown field is an error, as `kubectl apply` makes it), and the operators' custom resources the
schemas of their CRDs (trimmed copies in tests/schemas/crds, unknown fields rejected where the
CRD does not preserve them). Then what running Linli depends on: probes, resources, the wait for
the release's migrations, who may reach whom, what scales and what must not, what each level
runs, and that every pod would start with a configuration shared/config.py accepts.

kubectl is required: without it these tests fail (nothing in this suite is skipped).
"""
import base64
import copy
import functools
import ipaddress
import math
import os
import pathlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared import config as config_mod

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CRD_DIR = ROOT / "tests" / "schemas" / "crds"
KUBERNETES_VERSION = "1.30"

NODES = {"street": "310110012", "district": "310110", "city": "3101"}
TREES = {"base": K8S / "base", **{level: K8S / "overlays" / level for level in NODES}}
EVERY_SERVICE = {"registry", "points", "consultation", "notification", "aggregator", "gateway"}
RUNS = {"base": EVERY_SERVICE - {"points"}, "street": EVERY_SERVICE,
        "district": EVERY_SERVICE - {"points"}, "city": EVERY_SERVICE - {"points"}}
SINGLETONS = {"aggregator", "notification"}

# Secrets the operators create for the custom resources we render, and the keys they hold
# (RabbitMQ Cluster Operator: internal/resource/default_user_secret.go; CloudNativePG:
# pkg/specs/secrets.go). `connection_string` exists only in recent RabbitMQ operators, so it is
# not offered here.
RABBIT_SECRET_KEYS = {"username", "password", "host", "port", "default_user.conf", "provider", "type"}
CNPG_APP_SECRET_KEYS = {"username", "password", "host", "port", "dbname", "uri", "pgpass", "jdbc-uri"}
OUT_OF_BAND_SECRET = "linli-secrets"


# --- rendering ----------------------------------------------------------------------------------

@functools.cache
def _render(tree):
    # The machine's, or the pinned copy `make test` puts beside this interpreter when there is none.
    kubectl = shutil.which("kubectl") or shutil.which("kubectl", path=os.path.dirname(sys.executable))
    if kubectl is None:
        pytest.fail("kubectl is not installed, and k8s/ cannot be rendered without it: install kubectl "
                    "(1.27 or later, with kustomize v5) so `kubectl kustomize` works", pytrace=False)
    proc = subprocess.run([kubectl, "kustomize", str(TREES[tree])], check=False, capture_output=True, text=True,
                          timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {TREES[tree].relative_to(ROOT)} failed:\n{proc.stderr}", pytrace=False)
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def render(tree):
    """A fresh copy of the rendered objects (tests may not change each other's)."""
    return copy.deepcopy(list(_render(tree)))


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def named(objects, kind):
    return {o["metadata"]["name"]: o for o in of_kind(objects, kind)}


def service_of(deployment):
    return deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


def deployments(objects):
    return {service_of(d): d for d in of_kind(objects, "Deployment")}


def pod_specs(objects):
    """(owner, pod spec) for every pod template: the Deployments and the Job."""
    return [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
            for o in objects if o["kind"] in ("Deployment", "Job")]


def containers(pod_spec):
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


# --- schemas ------------------------------------------------------------------------------------

def _strict(schema):
    """The CRD schema as the API server applies it: a field a structural schema does not name is
    refused (kubectl's default strict field validation), unless the node preserves unknown fields."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def crd_validators():
    validators = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        schema = _strict(crd["openAPIV3Schema"])
        jsonschema.Draft7Validator.check_schema(schema)
        validators[(crd["apiVersion"], crd["kind"])] = jsonschema.Draft7Validator(schema)
    assert validators, f"no CRD schemas in {CRD_DIR}"
    return validators


def builtin_problems(obj):
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [exc.message]
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path)) or '(root)'}: {exc.message}"]
    return []


def custom_problems(obj):
    validator = crd_validators()[(obj["apiVersion"], obj["kind"])]
    return [f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))]


def is_custom(obj):
    return (obj["apiVersion"], obj["kind"]) in crd_validators()


@pytest.mark.parametrize("tree", TREES)
def test_every_builtin_object_matches_the_kubernetes_schema(tree):
    problems = [f"{o['kind']}/{o['metadata']['name']}: {p}"
                for o in render(tree) if not is_custom(o) for p in builtin_problems(o)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("tree", TREES)
def test_every_custom_resource_matches_its_crd(tree):
    # A kind with neither a built-in nor a vendored schema fails the test above.
    objects = render(tree)
    problems = [f"{o['kind']}/{o['metadata']['name']}: {p}" for o in objects if is_custom(o)
                for p in custom_problems(o)]
    assert not problems, "\n".join(problems)


def test_the_schemas_refuse_what_the_api_server_refuses():
    """Guards the two checks above against passing vacuously."""
    objects = render("base")
    deployment = copy.deepcopy(of_kind(objects, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    assert builtin_problems(deployment)
    deployment = copy.deepcopy(of_kind(objects, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "9105"
    assert builtin_problems(deployment)

    rabbit = copy.deepcopy(of_kind(objects, "RabbitmqCluster")[0])
    rabbit["spec"]["rabbitmq"]["plugins"] = ["rabbitmq_federation"]
    assert custom_problems(rabbit)
    rabbit = copy.deepcopy(of_kind(objects, "RabbitmqCluster")[0])
    rabbit["spec"]["rabbitmq"]["additionalPlugins"].append("rabbitmq-federation")
    assert custom_problems(rabbit)
    rabbit = copy.deepcopy(of_kind(objects, "RabbitmqCluster")[0])
    rabbit["spec"]["override"] = {"statefulSet": {"spec": {"anything": True}}}   # preserved, as the CRD says
    assert not custom_problems(rabbit)

    database = copy.deepcopy(of_kind(objects, "Cluster")[0])
    database["spec"]["bootstrap"]["initdb"]["ownr"] = "linli"
    assert custom_problems(database)
    database = copy.deepcopy(of_kind(objects, "Cluster")[0])
    del database["spec"]["instances"]
    assert custom_problems(database)


# --- the Deployments ----------------------------------------------------------------------------

def port_number(container, port):
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert numbers, f"{container['name']} names port {port!r}, which it does not declare"
    return numbers[0]


def literal_env(container):
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


@pytest.mark.parametrize("tree", TREES)
def test_every_deployment_is_probed_bounded_and_waits_for_its_migrations(tree):
    objects = render(tree)
    for service, deployment in deployments(objects).items():
        pod = deployment["spec"]["template"]["spec"]
        main = pod["containers"][0]
        assert pod["securityContext"]["runAsNonRoot"] is True, service
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            assert main[probe]["httpGet"]["path"] == path, f"{service} {probe}"
            probed = port_number(main, main[probe]["httpGet"]["port"])
            # The service listens on HEALTH_PORT (and the image's HEALTHCHECK probes it too).
            env = literal_env(main)
            assert probed == int(env["HEALTH_PORT"]), f"{service} {probe} probes {probed}, serves {env['HEALTH_PORT']}"
            if service != "gateway":
                assert probed == int(env["METRICS_PORT"]), f"{service} {probe}"

        init = pod.get("initContainers", [])
        assert [c["name"] for c in init][:1] == ["wait-for-migrations"], service
        wait = init[0]
        assert wait["args"] == ["migrate", "--wait", "--timeout", "600"], service
        assert wait["image"] == main["image"], f"{service} waits with another release's code"

        for container in containers(pod):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), \
                    f"{service}/{container['name']} has no {bound} for cpu and memory"


@pytest.mark.parametrize("tree", TREES)
def test_the_release_migrates_in_a_job_with_the_same_image(tree):
    objects = render(tree)
    job = named(objects, "Job")["linli-migrate"]
    pod = job["spec"]["template"]["spec"]
    # Topology first: once the services' wait for migrations ends, their vhost and queues exist.
    assert [c["args"] for c in containers(pod)] == [["topology", "apply"], ["migrate"]]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in containers(pod):
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
    images = {c["image"] for _, spec in pod_specs(objects) for c in containers(spec)}
    assert len(images) == 1, f"the Job and the Deployments run different images: {images}"
    if tree != "base":
        assert not images.pop().endswith(":latest"), "an overlay must pin the release's tag"


# --- what each level runs -----------------------------------------------------------------------

@pytest.mark.parametrize("tree", TREES)
def test_each_level_runs_its_services_in_its_own_namespace(tree):
    objects = render(tree)
    assert set(deployments(objects)) == RUNS[tree]
    if "points" not in RUNS[tree]:
        leftovers = [f"{o['kind']}/{o['metadata']['name']}" for o in objects if "points" in o["metadata"]["name"]]
        assert not leftovers, f"{tree} runs no points service but renders {leftovers}"
    if tree == "base":
        return
    config = named(objects, "ConfigMap")["linli-config"]["data"]
    assert (config["LEVEL"], config["NODE_CODE"], config["INSTANCE"]) == (tree, NODES[tree], f"{tree}-{NODES[tree]}")
    namespace = f"linli-{tree}-{NODES[tree]}"
    assert list(named(objects, "Namespace")) == [namespace]
    elsewhere = [f"{o['kind']}/{o['metadata']['name']}" for o in objects
                 if o["kind"] != "Namespace" and o["metadata"].get("namespace") != namespace]
    assert not elsewhere, f"outside {namespace}: {elsewhere}"


@pytest.mark.parametrize("tree", TREES)
def test_the_broker_and_the_database_come_from_their_operators(tree):
    objects = render(tree)
    brokers, databases = of_kind(objects, "RabbitmqCluster"), of_kind(objects, "Cluster")
    assert len(brokers) == 1 and len(databases) == 1
    broker, database = brokers[0], databases[0]
    assert broker["apiVersion"] == "rabbitmq.com/v1beta1"
    plugins = set(broker["spec"]["rabbitmq"]["additionalPlugins"])
    assert {"rabbitmq_federation", "rabbitmq_federation_management"} <= plugins
    assert database["apiVersion"] == "postgresql.cnpg.io/v1"
    assert database["spec"]["bootstrap"]["initdb"] == {"database": "linli", "owner": "linli"}
    replicas, instances = broker["spec"].get("replicas", 1), database["spec"]["instances"]
    assert replicas % 2 == 1, "quorum queues need an odd number of broker nodes"
    if tree in ("district", "city"):
        assert (replicas, instances) == (3, 3)
    else:
        assert (replicas, instances) == (1, 1)


# --- scaling and disruption ---------------------------------------------------------------------

def minimum_replicas(objects):
    """The fewest pods each workload runs: its HPA's minimum, else its fixed replicas."""
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")}
    minimum = {}
    for name, deployment in named(objects, "Deployment").items():
        minimum[name] = (hpas[name]["spec"].get("minReplicas", 1) if name in hpas
                         else deployment["spec"].get("replicas", 1))
    return minimum


@pytest.mark.parametrize("tree", TREES)
def test_stateless_services_autoscale_and_singletons_stay_single(tree):
    objects = render(tree)
    by_name = named(objects, "Deployment")
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    targets = []
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment"), hpa["metadata"]["name"]
        assert ref["name"] in by_name, f"HPA {hpa['metadata']['name']} scales {ref['name']}, which is not rendered"
        assert hpa["spec"]["maxReplicas"] >= hpa["spec"].get("minReplicas", 1)
        assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
        # A replicas field would be re-applied over the HPA's count on every deploy.
        assert "replicas" not in by_name[ref["name"]]["spec"], f"{ref['name']} fights its HPA over replicas"
        targets.append(service_of(by_name[ref["name"]]))
    assert len(targets) == len(set(targets)), "two HPAs scale one Deployment"
    assert set(targets) == RUNS[tree] - SINGLETONS
    for service in SINGLETONS:
        deployment = deployments(objects)[service]
        assert deployment["spec"]["replicas"] == 1, service
        assert deployment["spec"]["strategy"]["type"] == "Recreate", f"a rollout would run two {service}s"
    assert minimum_replicas(objects)["linli-gateway"] >= 2


def selected_workloads(selector, objects):
    """Names of the workloads whose pods a label selector matches (Deployments and broker nodes)."""
    found = [name for name, d in named(objects, "Deployment").items()
             if matches(selector, d["spec"]["template"]["metadata"]["labels"])]
    found += [name for name in named(objects, "RabbitmqCluster") if matches(selector, rabbit_pod_labels(name))]
    return found


@pytest.mark.parametrize("tree", TREES)
def test_disruption_budgets_cover_every_service_and_never_block_a_drain(tree):
    objects = render(tree)
    minimum = minimum_replicas(objects)
    minimum.update({name: r["spec"].get("replicas", 1) for name, r in named(objects, "RabbitmqCluster").items()})
    covered = []
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        name, spec = pdb["metadata"]["name"], pdb["spec"]
        workloads = selected_workloads(spec["selector"], objects)
        assert workloads, f"PDB {name} selects no rendered workload's pods"
        covered += workloads
        for workload in workloads:
            if "minAvailable" in spec:
                needed = spec["minAvailable"]
                if isinstance(needed, str):
                    needed = math.ceil(minimum[workload] * int(needed.rstrip("%")) / 100)
                assert minimum[workload] > needed, \
                    f"PDB {name} keeps {needed} of {workload}'s {minimum[workload]} pod(s): a drain would wait forever"
            else:
                allowed = spec["maxUnavailable"]
                assert (int(allowed.rstrip("%")) if isinstance(allowed, str) else allowed) >= 1, name
    assert sorted(covered) == sorted(set(covered)), "a pod under two PDBs cannot be evicted at all"
    assert set(named(objects, "Deployment")) <= set(covered), "a Deployment without a PDB"


# --- who may reach whom -------------------------------------------------------------------------

def matches(selector, labels):
    """Kubernetes label-selector semantics; {} selects everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, values = expression["key"], expression.get("values") or []
        present = key in labels
        if {"In": not (present and labels[key] in values), "NotIn": present and labels[key] in values,
                "Exists": not present, "DoesNotExist": present}[expression["operator"]]:
            return False
    return True


def rabbit_pod_labels(cluster):
    # internal/metadata/label.go in the RabbitMQ Cluster Operator.
    return {"app.kubernetes.io/name": cluster, "app.kubernetes.io/component": "rabbitmq",
            "app.kubernetes.io/part-of": "rabbitmq"}


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict
    ports: dict            # name -> number ("" for unnamed)
    numbers: set = field(default_factory=set)


@dataclass
class Source:
    """Where a connection comes from: outside the cluster (an address) or a pod in a namespace."""
    ip: str = None
    namespace: str = None
    labels: dict = field(default_factory=dict)


OUTSIDE = Source(ip="203.0.113.10")
OTHER_NAMESPACE = Source(namespace="elsewhere", labels={"app.kubernetes.io/name": "linli"})
MONITORING = Source(namespace="monitoring", labels={"app.kubernetes.io/name": "prometheus"})
CNPG_OPERATOR = Source(namespace="cnpg-system", labels={"app.kubernetes.io/name": "cloudnative-pg"})


def namespace_of(objects):
    return next((o["metadata"]["namespace"] for o in objects if o["metadata"].get("namespace")), "default")


def pods(objects):
    """Every pod the rendered objects make: ours, and the operators' (labels and ports as they make them)."""
    namespace = namespace_of(objects)
    made = []
    templates = {f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"] for o in objects
                 if o["kind"] in ("Deployment", "Job")}
    for owner, spec in pod_specs(objects):
        labels = templates[owner]["metadata"]["labels"]
        ports = {p.get("name", ""): p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}
        made.append(Pod(owner, namespace, labels, ports, set(ports.values())))
    for name in named(objects, "RabbitmqCluster"):
        ports = {"epmd": 4369, "amqp": 5672, "amqps": 5671, "management": 15672, "prometheus": 15692, "cluster": 25672}
        made.append(Pod(f"rabbitmq/{name}", namespace, rabbit_pod_labels(name), ports, set(ports.values())))
    for name in named(objects, "Cluster"):
        ports = {"postgresql": 5432, "status": 8000, "metrics": 9187}
        made.append(Pod(f"cnpg/{name}", namespace, {"cnpg.io/cluster": name, "cnpg.io/podRole": "instance"},
                        ports, set(ports.values())))
    return made


def peer_matches(peer, source, namespace):
    if "ipBlock" in peer:
        if source.ip is None:
            return False
        address = ipaddress.ip_address(source.ip)
        block = peer["ipBlock"]
        network = ipaddress.ip_network(block["cidr"])
        return (address.version == network.version and address in network
                and not any(address in ipaddress.ip_network(e) for e in block.get("except", [])
                            if ipaddress.ip_network(e).version == address.version))
    if source.ip is not None:
        return False
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": source.namespace}):
            return False
    elif source.namespace != namespace:
        return False
    return "podSelector" not in peer or matches(peer["podSelector"], source.labels)


def port_matches(ports, pod, port):
    if not ports:
        return True
    for rule in ports:
        if rule.get("protocol", "TCP") != "TCP":
            continue
        wanted = rule.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            if pod.ports.get(wanted) == port:
                return True
        elif wanted <= port <= rule.get("endPort", wanted):
            return True
    return False


def allowed(objects, source, pod, port):
    """Whether the NetworkPolicies let `source` open a TCP connection to `pod` on `port`."""
    selecting = [p for p in of_kind(objects, "NetworkPolicy")
                 if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
                 and matches(p["spec"]["podSelector"], pod.labels)]
    if not selecting:
        return True          # a pod no policy selects takes everything
    return any((not rule.get("from") or any(peer_matches(peer, source, pod.namespace) for peer in rule["from"]))
               and port_matches(rule.get("ports"), pod, port)
               for policy in selecting for rule in policy["spec"].get("ingress") or [])


def probe_ports(pod):
    return pod.numbers | {1, 80, 443, 8000, 8080, 12345}


@pytest.mark.parametrize("tree", TREES)
def test_only_the_gateway_takes_traffic_from_outside(tree):
    objects = render(tree)
    everyone = pods(objects)
    linli = [p for p in everyone if p.labels.get("app.kubernetes.io/name") == "linli"]
    assert len(linli) == len(RUNS[tree]) + 1      # the Deployments and the migration Job
    for pod in linli:
        open_ports = {port for port in probe_ports(pod) for source in (OUTSIDE, OTHER_NAMESPACE)
                      if allowed(objects, source, pod, port)}
        if pod.labels.get("app.kubernetes.io/component") == "gateway":
            assert open_ports == {8000}, f"the gateway is reachable from anywhere on {open_ports}, not just 8000"
        else:
            assert not open_ports, f"{pod.name} is reachable from outside on {sorted(open_ports)}"
    # Isolation is the default: no pod here, nor one added later (a debug pod, a new component),
    # takes a connection nobody asked for.
    namespace = namespace_of(objects)
    stranger = Source(namespace=namespace, labels={"run": "debug"})
    newcomer = Pod("a pod no policy names", namespace, {"run": "debug"}, {"": 12345}, {12345})
    for pod in [*everyone, newcomer]:
        assert not allowed(objects, stranger, pod, 12345), f"{pod.name} is not isolated"


@pytest.mark.parametrize("tree", TREES)
def test_monitoring_the_database_and_the_broker_are_reachable_by_whom_they_should_be(tree):
    objects = render(tree)
    everyone = pods(objects)
    namespace = namespace_of(objects)
    linli = [p for p in everyone if p.labels.get("app.kubernetes.io/name") == "linli"]
    ours = [Source(namespace=namespace, labels=p.labels) for p in linli]
    stranger = Source(namespace=namespace, labels={"run": "debug"})
    (broker,) = [p for p in everyone if p.name.startswith("rabbitmq/")]
    (database,) = [p for p in everyone if p.name.startswith("cnpg/")]

    for pod in linli:
        if "Deployment" in pod.name:
            metrics = pod.ports.get("metrics", pod.ports.get("http"))
            assert allowed(objects, MONITORING, pod, metrics), f"Prometheus cannot scrape {pod.name}"
    for source in ours:
        assert allowed(objects, source, database, 5432)
        assert allowed(objects, source, broker, 5672)
        assert allowed(objects, source, broker, 15672), "topology apply creates the vhost through the management API"
    for port in (5432, 8000):
        assert allowed(objects, CNPG_OPERATOR, database, port), f"CloudNativePG's operator cannot reach {port}"
        assert allowed(objects, Source(namespace=namespace, labels=database.labels), database, port)
    for source in (OUTSIDE, OTHER_NAMESPACE, stranger):
        assert not allowed(objects, source, database, 5432)
        assert not allowed(objects, source, broker, 15672), "the management API is for our pods only"
    # Federation: the brokers of the other levels open the links, from outside the namespace.
    for port in (5672, 5671):
        assert allowed(objects, OUTSIDE, broker, port)
    for port in (4369, 25672):
        assert allowed(objects, Source(namespace=namespace, labels=broker.labels), broker, port)
        assert not allowed(objects, OUTSIDE, broker, port)


# --- configuration as the pods would see it -----------------------------------------------------

def _key32():
    return base64.urlsafe_b64encode(b"\x07" * 32).decode()


def secret_data(objects, name):
    """What a Secret named in a pod would hold: ours out of band, the operators', or a rendered one."""
    namespace = namespace_of(objects)
    if name == OUT_OF_BAND_SECRET:       # the required keys each overlay's kustomization says to set
        return {"PSEUDONYM_SECRET": "p" * 40, "DATA_ENCRYPTION_KEY": _key32(), "SIGNING_KEY": _key32(),
                "HANDOVER_SECRET": "h" * 40}
    for cluster in named(objects, "RabbitmqCluster"):
        if name == f"{cluster}-default-user":
            return {"username": "default_user_Ab-_9", "password": "Zx_-Yw8VuTs", "port": "5672",
                    "host": f"{cluster}.{namespace}.svc", "default_user.conf": "", "provider": "rabbitmq",
                    "type": "rabbitmq"}
    for cluster in named(objects, "Cluster"):
        if name == f"{cluster}-app":
            host = f"{cluster}-rw.{namespace}"
            return {"username": "linli", "password": "s3cret", "host": host, "port": "5432", "dbname": "linli",
                    "uri": f"postgresql://linli:s3cret@{host}:5432/linli", "pgpass": "", "jdbc-uri": ""}
    rendered = named(objects, "Secret")
    assert name in rendered, f"Secret {name} is neither rendered, made by an operator, nor {OUT_OF_BAND_SECRET}"
    return {**rendered[name].get("stringData", {}),
            **{k: base64.b64decode(v).decode() for k, v in rendered[name].get("data", {}).items()}}


def configmap_data(objects, name):
    rendered = named(objects, "ConfigMap")
    assert name in rendered, f"ConfigMap {name} is not rendered"
    return rendered[name].get("data", {})


def expand(value, defined):
    """The kubelet's $(VAR) expansion: defined names are replaced, $$ escapes, anything else stays."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and value.find(")", i) != -1:
            end = value.find(")", i)
            out.append(defined.get(value[i + 2:end], value[i:end + 1]))
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def environment(objects, container):
    """The environment the kubelet would give the container: envFrom first, then env in order."""
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = configmap_data(objects, source["configMapRef"]["name"])
        else:
            data = secret_data(objects, source["secretRef"]["name"])
        env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            data, key = secret_data(objects, ref["secretKeyRef"]["name"]), ref["secretKeyRef"]["key"]
        elif "configMapKeyRef" in ref:
            data, key = configmap_data(objects, ref["configMapKeyRef"]["name"]), ref["configMapKeyRef"]["key"]
        else:
            continue
        assert key in data, f"{container['name']}: {var['name']} reads key {key!r}, which its source does not hold"
        env[var["name"]] = data[key]
    return env


@pytest.mark.parametrize("tree", TREES)
def test_every_secret_and_configmap_a_pod_names_exists(tree):
    objects = render(tree)
    operator_keys = {f"{c}-default-user": RABBIT_SECRET_KEYS for c in named(objects, "RabbitmqCluster")}
    operator_keys.update({f"{c}-app": CNPG_APP_SECRET_KEYS for c in named(objects, "Cluster")})
    secrets, configmaps = set(named(objects, "Secret")), named(objects, "ConfigMap")
    for owner, spec in pod_specs(objects):
        refs = []       # (kind, name, key or None)
        for container in containers(spec):
            for source in container.get("envFrom", []):
                refs += [("Secret", source["secretRef"]["name"], None)] if "secretRef" in source else \
                        [("ConfigMap", source["configMapRef"]["name"], None)]
            for var in container.get("env", []):
                ref = var.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    refs.append(("Secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]))
                if "configMapKeyRef" in ref:
                    refs.append(("ConfigMap", ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]))
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                refs.append(("Secret", volume["secret"]["secretName"], None))
            if "configMap" in volume:
                refs.append(("ConfigMap", volume["configMap"]["name"], None))
        for kind, name, key in refs:
            if kind == "ConfigMap":
                assert name in configmaps, f"{owner} reads ConfigMap {name}, which is not rendered"
                assert key is None or key in configmaps[name].get("data", {}), f"{owner}: {name} has no {key}"
            elif name in operator_keys:
                assert key is None or key in operator_keys[name], f"{owner}: the operator's {name} has no key {key}"
            else:
                assert name in secrets or name == OUT_OF_BAND_SECRET, \
                    f"{owner} reads Secret {name}: not rendered, not an operator's, not {OUT_OF_BAND_SECRET}"


@pytest.mark.parametrize("tree", TREES)
def test_every_container_would_start_with_a_valid_configuration(tree):
    objects = render(tree)
    for owner, spec in pod_specs(objects):
        for container in containers(spec):
            env = environment(objects, container)
            where = f"{owner}/{container['name']}"
            unexpanded = {k: v for k, v in env.items() if "$(" in v}
            assert not unexpanded, f"{where}: references the kubelet would leave as they are: {unexpanded}"
            try:
                cfg = config_mod.load(environ=env)
            except config_mod.ConfigError as exc:
                pytest.fail(f"{where} would not start:\n{exc}", pytrace=False)
            amqp, management = urlsplit(cfg["AMQP_URI"]), urlsplit(cfg["RABBIT_MANAGEMENT_URL"])
            assert amqp.path == "/" + cfg["INSTANCE"], f"{where}: the vhost is not the instance's own"
            assert (management.hostname, management.port) == (amqp.hostname, 15672), where
            assert (management.username, management.password) == (amqp.username, amqp.password), \
                f"{where}: topology apply grants the vhost to the AMQP user through the management API as that user"
