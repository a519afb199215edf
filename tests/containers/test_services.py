"""The release's Job and four services, each a container of the one image, as the street overlay runs them."""
import json

import requests

from tests.containers.conftest import SERVICES, podman, rolled_up_residents, unsent_facts
from tests.integration.conftest import wait_for
from tests.integration.test_residents_api import id_number


def test_the_job_migrates_once_and_the_services_wait_for_it(migrated):
    code, out = migrated["wait_before"]
    assert code == 1 and "waiting: " in out and "still waiting after 3s" in out, out
    code, out = migrated["topology"]
    assert code == 0, out
    code, out = migrated["migrate"]
    assert code == 0 and "migration(s) applied" in out and not out.startswith("0 migration"), out
    code, out = migrated["again"]
    assert code == 0 and "0 migration(s) applied" in out, out
    code, out = migrated["wait_after"]
    assert code == 0 and "every migration this release ships is applied" in out, out


def test_each_service_answers_healthz_and_readyz(services):
    for component, port in SERVICES.items():
        for path in ("/healthz", "/readyz"):
            resp = requests.get(services[component].url(port, path), timeout=5)
            assert resp.status_code == 200, (component, path, resp.text)
        # The image's own HEALTHCHECK (what `docker run` and podman use without Kubernetes) passes too.
        assert podman("healthcheck", "run", services[component].name, check=False).returncode == 0, component


def test_each_runs_as_10001_with_no_capabilities_on_a_read_only_root(services):
    for component, service in services.items():
        status = dict(line.split(":\t", 1) for line in service.exec("cat", "/proc/1/status").stdout.splitlines()
                      if ":\t" in line)
        assert status["Uid"].split()[:2] == ["10001", "10001"], component
        assert status["Gid"].split()[:2] == ["10001", "10001"], component
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, (component, status["CapEff"])
        assert status["NoNewPrivs"].strip() == "1", component
        # Only /tmp (the manifests' emptyDir) is writable.
        assert service.exec("touch", "/tmp/written").returncode == 0
        for path in ("/home/linli/x", "/opt/x", "/var/tmp/x", "/run/x", "/x"):
            refused = service.exec("touch", path, check=False)
            assert refused.returncode != 0 and ("Read-only" in refused.stderr or "denied" in refused.stderr), \
                (component, path, refused.stderr)


def test_a_resident_registered_through_the_gateway_is_in_the_aggregators_rollups(street, services, demo):
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {demo}"
    base = services["gateway"].url("http")

    def residents():
        return rolled_up_residents(street)

    def settled():
        return unsent_facts(street) == 0 and residents() > 0
    wait_for(settled, timeout=60, interval=0.5, message="the demo residents relayed and rolled up")
    before = residents()
    body = {"name": "容器里登记", "id_number": id_number(seq="731"), "phone": "13916270731",
            "community_code": f"{street.node}001", "building": "7号", "unit": "1单元", "room": "101", "relation": "self",
            "residence_type": "registered", "moved_in": "2020-01-01"}
    resp = api.post(base + "/api/v1/residents", data=json.dumps(body, ensure_ascii=False).encode(),
                    headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 201, resp.text
    wait_for(lambda: residents() == before + 1, timeout=10, interval=0.2,
             message="the new resident in the containerised aggregator's roll-ups")
