"""The street overlay's gateway pod, as rendered, run by `podman kube play`, its probes passing.

The pod template is the rendered Deployment's, with the two changes podman 4.3 needs (kube.py):
`$(VAR)` expanded in env values, and the init container run at every start of the pod. The
Secrets it names are made as podman secrets first. Its probes are then made as the kubelet makes
them, from outside the container: an HTTP GET on the probe's port and path, in the pod's network
namespace, with the probe's timeout; 200-399 passes.
"""
import subprocess

import pytest
import yaml

from tests.containers.conftest import NETWORK, podman
from tests.containers.kube import kube_play_documents, podman_secret
from tests.integration.conftest import wait_for

POD = "linli-ct-street-gateway"


@pytest.fixture
def gateway_pod(street, migrated, tmp_path):
    template = street.deployments["gateway"]["spec"]["template"]
    play = tmp_path / "gateway-pod.yaml"
    play.write_text(yaml.safe_dump_all(kube_play_documents(POD, template, street.config_maps, street.secrets),
                                       allow_unicode=True))
    try:
        # The names the manifests give: a machine running this stage holds no other Linli secrets.
        for name, values in street.secrets.items():
            podman("secret", "rm", name, check=False)
            podman("secret", "create", name, "-", input=podman_secret(values))
        podman("pod", "rm", "--force", POD, check=False)
        podman("kube", "play", "--network", NETWORK, str(play))
        yield template["spec"]
    finally:
        podman("kube", "down", str(play), check=False)
        podman("pod", "rm", "--force", POD, check=False)
        for name in street.secrets:
            podman("secret", "rm", name, check=False)


def probe(pid, container, kind):
    """The kubelet's httpGet probe of `container`, made from the host in the network namespace of `pid`."""
    spec = container[kind]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    port = ports.get(spec["port"], spec["port"])
    url = f"http://127.0.0.1:{port}{spec['path']}"
    script = ("import sys, urllib.request\n"
              "try:\n    code = urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).status\n"
              "except Exception as exc:\n    code = getattr(exc, 'code', 0)\nprint(code)\n")
    proc = subprocess.run(["nsenter", "--target", str(pid), "--net", "python3", "-c", script, url,
                           str(container[kind].get("timeoutSeconds", 1))], capture_output=True, text=True, timeout=30)
    return int(proc.stdout.strip() or 0)


def test_the_rendered_gateway_pod_runs_and_its_probes_pass(gateway_pod):
    container = gateway_pod["containers"][0]
    name = f"{POD}-{container['name']}"
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())

    def ready():
        return 200 <= probe(pid, container, "readinessProbe") < 400
    try:
        wait_for(ready, timeout=90, interval=1, message="the gateway pod's readiness probe")
    except AssertionError:
        logs = podman("logs", name, check=False)
        raise AssertionError(f"the gateway pod never became ready:\n{(logs.stdout + logs.stderr)[-4000:]}")
    assert 200 <= probe(pid, container, "livenessProbe") < 400
    # Its init container held it until the migrations were in, then let it go.
    init = gateway_pod["initContainers"][0]
    said = podman("logs", f"{POD}-{init['name']}", check=False)
    assert "every migration this release ships is applied" in said.stdout + said.stderr
    # Run as the manifest says: its user, no capabilities, nothing writable but /tmp.
    status = podman("exec", name, "cat", "/proc/1/status").stdout
    assert "Uid:\t10001\t10001" in status and "CapEff:\t0000000000000000" in status
    assert podman("exec", name, "touch", "/home/linli/x", check=False).returncode != 0
    assert podman("exec", name, "touch", "/tmp/x").returncode == 0
