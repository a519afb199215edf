"""The container stage: the service image run by podman the way the street overlay's manifests say.

Real: the image `deploy/image/build.sh` built (`make image`; LINLI_TEST_IMAGE names another), podman,
the machine's PostgreSQL and RabbitMQ (a database and a vhost of this stage's own, dropped at the
end), and the manifests as `kubectl kustomize k8s/overlays/street` renders them: each container's
args, environment, user, read-only root, capabilities and writable volumes come from there
(tests/containers/kube.py). Faked: only what the cluster's operators would make, the Secrets
(`linli-db-app`, `linli-rabbitmq-default-user`, and the `linli-secrets` an operator creates by hand),
here pointing at the host. Each container has a network namespace of its own (slirp4netns, in which
the host's loopback is 10.0.2.2), so every service listens on its manifest's port without clashes,
published on a free port of the host's loopback.

Where podman is not installed and could not be (deploy/image/build.sh says why), the stage is
skipped with that reason; where podman is here but the image is not, it fails.
"""
import base64
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import time
import urllib.parse

import psycopg
import pytest
import requests

from tests.conftest import ADMIN_DSN
from tests.containers.kube import resolve_env, run_args
from tests.integration.conftest import wait_for
from tests.unit.test_k8s_manifests import render

PODMAN = shutil.which("podman")
IMAGE = os.environ.get("LINLI_TEST_IMAGE", "linli:latest")
HOST = "10.0.2.2"
NETWORK = "slirp4netns:allow_host_loopback=true"
DATABASE = os.environ.get("LINLI_TEST_CONTAINERS_DB", "linli_containers")
LABEL = "linli-test=containers"
MANAGEMENT = os.environ.get("LINLI_TEST_MANAGEMENT", "http://guest:guest@127.0.0.1:15672")
# Written by deploy/image/build.sh when podman can neither be installed nor run here, with why.
UNAVAILABLE = pathlib.Path(__file__).resolve().parents[2] / "var" / "image" / "unavailable"


def podman(*args, check=True, timeout=180, **kw):
    proc = subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} … exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _key():
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class Street:
    """The street overlay's objects, and the Secrets the cluster would hold, pointed at this machine."""

    def __init__(self):
        objects = render("street")
        self.deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
                            for d in objects if d["kind"] == "Deployment"}
        self.job = next(o for o in objects if o["kind"] == "Job")
        self.config_maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
        self.instance = self.config_maps["linli-config"]["INSTANCE"]
        self.node = self.config_maps["linli-config"]["NODE_CODE"]
        admin = urllib.parse.urlsplit(ADMIN_DSN)
        self.dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + DATABASE
        self.secrets = {
            "linli-db-app": {"uri": f"postgresql://{admin.username}@{HOST}:{admin.port or 5432}/{DATABASE}"},
            "linli-rabbitmq-default-user": {"username": "guest", "password": "guest", "host": HOST, "port": "5672"},
            "linli-secrets": {"PSEUDONYM_SECRET": secrets.token_urlsafe(36), "DATA_ENCRYPTION_KEY": _key(),
                              "SIGNING_KEY": _key(), "HANDOVER_SECRET": secrets.token_urlsafe(36)},
        }

    def env(self, container):
        return resolve_env(container, self.config_maps, self.secrets)

    def pod(self, component):
        return self.deployments[component]["spec"]["template"]["spec"]

    def image(self):
        """The image the manifests name (linli:<release>) is the one under test."""
        return self.pod("gateway")["containers"][0]["image"]


class Running:
    """One service container, its manifest's ports published on free ports of the host's loopback
    (chosen here, so they stay the same when the container is stopped and started again)."""

    def __init__(self, name, ports):
        self.name, self.ports = name, ports
        self.published = {port_name: free_port() for port_name in ports}

    def url(self, port_name, path=""):
        return f"http://127.0.0.1:{self.published[port_name]}{path}"

    def exec(self, *command, check=True):
        return podman("exec", self.name, *command, check=check)

    def logs(self):
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def image():
    if UNAVAILABLE.exists():
        pytest.skip(f"no image can be built here: {UNAVAILABLE.read_text().strip()} (deploy/image/build.sh)")
    if PODMAN is None:
        pytest.skip("podman is not installed on this machine: `make image` installs it and builds the image")
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.fail(f"no image {IMAGE} in podman's storage: `make image` builds it", pytrace=False)
    return IMAGE


def _drop(street):
    _remove_labelled()
    requests.delete(f"{MANAGEMENT}/api/vhosts/{street.instance}", timeout=10)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def _backends_answer():
    try:
        with psycopg.connect(ADMIN_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return requests.get(f"{MANAGEMENT}/api/overview", timeout=3).ok
    except (psycopg.OperationalError, requests.RequestException):
        return False


def _remove_labelled():
    ids = podman("ps", "--all", "--quiet", "--filter", f"label={LABEL}", check=False).stdout.split()
    if ids:
        podman("rm", "--force", "--time", "0", *ids, check=False)


@pytest.fixture(scope="session")
def street(image):
    """A fresh database and vhost for the street overlay's instance, and the image tagged as its release."""
    street = Street()
    # The chaos suite before this one stops and starts the machine's database and broker.
    wait_for(_backends_answer, timeout=120, interval=1, message="PostgreSQL and RabbitMQ's management API")
    if street.image() != image:
        podman("tag", image, street.image())
    _drop(street)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    yield street
    _drop(street)


def run_once(street, pod, container, *, timeout=300):
    """A container of a Job or an init container, run to its end: (exit code, output)."""
    name = f"linli-ct-{container['name']}-{secrets.token_hex(3)}"
    # No HEALTHCHECK for a run to completion (podman would complain it has no systemd to time it).
    proc = podman("run", "--name", name, "--label", LABEL, "--network", NETWORK, "--no-healthcheck",
                  *run_args(pod, container, street.env(container)), street.image(), *container["args"],
                  check=False, timeout=timeout)
    podman("rm", "--force", name, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def migrated(street):
    """The release's Job run as its manifest says (topology, then migrate), with the services' own
    wait-for-migrations before and after it; returns what each said."""
    job = street.job["spec"]["template"]["spec"]
    wait = street.pod("registry")["initContainers"][0]
    said = {"wait_before": run_once(street, street.pod("registry"),
                                    {**wait, "args": ["migrate", "--wait", "--timeout", "3"]})}
    for container in job["initContainers"] + job["containers"]:
        said[container["name"]] = run_once(street, job, container)
    said["again"] = run_once(street, job, job["containers"][0])
    said["wait_after"] = run_once(street, street.pod("registry"), wait)
    return said


def start(street, component, *, name=None):
    """A Deployment's main container, detached, as its pod template says."""
    pod = street.pod(component)
    container = pod["containers"][0]
    name = name or f"linli-ct-{component}"
    running = Running(name, {p["name"]: p["containerPort"] for p in container.get("ports", [])})
    publish = [arg for port_name, port in running.ports.items()
               for arg in ("--publish", f"127.0.0.1:{running.published[port_name]}:{port}")]
    podman("run", "--detach", "--name", name, "--label", LABEL, "--network", NETWORK, *publish,
           *run_args(pod, container, street.env(container)), street.image(), *container["args"])
    return running


def ready(service, port_name):
    try:
        return requests.get(service.url(port_name, "/readyz"), timeout=3).status_code == 200
    except requests.RequestException:
        return False


def wait_ready(service, port_name, timeout=90):
    try:
        wait_for(lambda: ready(service, port_name), timeout=timeout, interval=0.5,
                 message=f"{service.name} /readyz")
    except AssertionError:
        raise AssertionError(f"{service.name} never became ready; its log:\n{service.logs()[-4000:]}")


SERVICES = {"registry": "metrics", "aggregator": "metrics", "notification": "metrics", "gateway": "http"}


@pytest.fixture(scope="session")
def services(street, migrated):
    """registry, gateway, aggregator and notification, each a container of its own, all ready."""
    assert migrated["migrate"][0] == 0, migrated["migrate"][1]
    running = {component: start(street, component) for component in SERVICES}
    for component, port in SERVICES.items():
        wait_ready(running[component], port)
    yield running
    for service in running.values():
        podman("rm", "--force", "--time", "5", service.name, check=False)


def cli(street, *args, component="registry"):
    """A one-off `linli ...` in the image, with a service's environment (as `kubectl exec` would have)."""
    pod = street.pod(component)
    container = {**pod["containers"][0], "args": list(args)}
    code, out = run_once(street, pod, container)
    assert code == 0, out
    return out


@pytest.fixture(scope="session")
def demo(street, services):
    """The demo street loaded (as `make up` loads it), and a street admin's API token."""
    loaded = cli(street, "demo", "load")
    assert "resident(s) registered" in loaded, loaded
    return cli(street, "token", "create", "--name", "容器测试", "--role", "street_admin").strip().splitlines()[-1]


def sql(street, query, params=()):
    with psycopg.connect(street.dsn) as conn:
        return conn.execute(query, params).fetchall()


def rolled_up_residents(street):
    """The street's residents in the aggregator's roll-ups (every year's change, summed)."""
    return int(sql(street, "SELECT coalesce(sum(n), 0) FROM aggregator.rollups WHERE node = %s "
                           "AND metric = 'residents' AND period = 'year' AND dim = ''", (street.node,))[0][0])


def unsent_facts(street):
    """Facts the registry's outbox has not relayed yet."""
    return sql(street, "SELECT count(*) FROM registry.outbox WHERE sent_at IS NULL AND exchange = 'facts'")[0][0]


def stop_timed(name, pod_spec):
    """Stop a container as the kubelet stops its pod: its preStop hook, then SIGTERM, then SIGKILL at
    the end of terminationGracePeriodSeconds (which the hook's time counts against). Returns (seconds
    it took, the container's exit code)."""
    grace = pod_spec["terminationGracePeriodSeconds"]
    hook = pod_spec["containers"][0].get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    began = time.monotonic()
    if hook:
        podman("exec", name, *hook, timeout=grace)
    left = max(1, int(grace - (time.monotonic() - began)))
    podman("stop", "--time", str(left), name, timeout=grace + 60)
    took = time.monotonic() - began
    code = int(podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())
    return took, code
