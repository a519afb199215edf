"""SIGTERM in the middle of a burst of registrations: nothing acknowledged is lost, nothing is counted twice.

The registry container, then the gateway, aggregator and notification containers, are stopped as the
kubelet stops a pod (SIGTERM, then SIGKILL after the manifest's terminationGracePeriodSeconds) while
clients register residents through the gateway. Each must finish its workers in flight and exit by
itself, well inside the grace period; what it had not acknowledged goes back to its queue. Clients
do what a page does with an answer that never came or said "try again": send the same registration
again, until it is either created or refused as already registered (409). After they are started
again, the register holds each resident once and the aggregator's roll-ups count each once.
"""
import json

import eventlet
import requests

from tests.containers.conftest import podman, rolled_up_residents, sql, stop_timed, unsent_facts, wait_ready
from tests.integration.conftest import wait_for
from tests.integration.test_residents_api import id_number

BURST = 300


def body(i, node):
    return {"name": f"批量登记{i:03d}", "id_number": id_number(birth="19700101", seq=f"{i:03d}"),
            "community_code": f"{node}00{1 + i % 3}", "building": f"{1 + i % 9}号", "unit": "1单元",
            "room": f"{100 + i}", "relation": "self", "residence_type": "registered", "moved_in": "2021-03-01"}


def register(base, token, resident, deadline, after):
    """The registration sent until it is settled one way or the other: 'created' or 'existed'."""
    eventlet.sleep(after)
    data = json.dumps(resident, ensure_ascii=False).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    answers = []
    while True:
        try:
            resp = requests.post(base + "/api/v1/residents", data=data, headers=headers, timeout=40)
            answers.append(resp.status_code)
            if resp.status_code == 201:
                return "created", answers
            if resp.status_code == 409 and "id_number" in resp.json().get("errors", {}):
                return "existed", answers
            assert resp.status_code in (502, 503, 504), resp.text  # anything else is a refusal: a bug here
        except requests.ConnectionError:
            answers.append("no answer")
        if eventlet.hubs.get_hub().clock() > deadline:
            return "unsettled", answers
        eventlet.sleep(0.5)


def test_sigterm_mid_burst_loses_nothing_and_counts_nothing_twice(street, services, demo):
    token = demo
    base = services["gateway"].url("http")

    def residents():
        return rolled_up_residents(street)

    def unsent():
        return unsent_facts(street)
    wait_for(lambda: unsent() == 0, timeout=60, interval=0.5, message="the registry's outbox empty before the burst")
    before_register = sql(street, "SELECT count(*) FROM registry.residents")[0][0]
    before_rollups = residents()

    deadline = eventlet.hubs.get_hub().clock() + 240
    pods = {c: street.deployments[c]["spec"]["template"]["spec"]
            for c in ("registry", "gateway", "aggregator", "notification")}
    # 40 a second for 7.5 s: a street's busiest morning, many times over.
    burst = [eventlet.spawn(register, base, token, body(i, street.node), deadline, i / 40) for i in range(BURST)]
    stops = {}
    try:
        # Stop each service mid-burst, once registrations are flowing through it.
        wait_for(lambda: sql(street, "SELECT count(*) FROM registry.residents")[0][0] >= before_register + 15,
                 timeout=60, interval=0.1, message="the burst under way")
        # The registry first; then, while its callers wait for it and registrations keep arriving, the
        # gateway, the aggregator and notification together, as a node drain stops what runs on it.
        at_stop = sql(street, "SELECT count(*) FROM registry.residents")[0][0] - before_register
        stops["registry"] = stop_timed(services["registry"].name, pods["registry"])
        stopping = {c: eventlet.spawn(stop_timed, services[c].name, pods[c])
                    for c in ("gateway", "aggregator", "notification")}
        stops.update({c: thread.wait() for c, thread in stopping.items()})
    finally:
        # Whatever happened above, the later tests find every service running.
        for component in pods:
            podman("start", services[component].name, check=False)
        for component in pods:
            wait_ready(services[component], "http" if component == "gateway" else "metrics")
        if len(stops) < len(pods):  # failed midway: no client goes on sending into later tests
            for thread in burst:
                thread.kill()
    results = [thread.wait() for thread in burst]

    for component, (took, code) in stops.items():
        grace = pods[component]["terminationGracePeriodSeconds"]
        # Exit 0 is nameko's own stop; 137 would be the SIGKILL at the end of the grace period.
        said = [line[:300] for line in services[component].logs().splitlines() if '"(expected)' not in line
                and ('"INFO"' not in line or "stopping" in line or "starting" in line)]
        assert code == 0, f"{component} exited {code} on SIGTERM:\n" + "\n".join(said)[-6000:]
        # Well inside: a third of the grace period left (the gateway's is its 5 s preStop wait, then
        # at most the 10 s deadline of the requests waiting on the stopped registry).
        assert took < grace * 2 / 3, f"{component} took {took:.1f} s to stop, grace {grace} s"
    outcomes = [outcome for outcome, _ in results]
    assert outcomes.count("unsettled") == 0, [answers for outcome, answers in results if outcome == "unsettled"]
    # The stop came while registrations were still arriving.
    assert at_stop < BURST // 2, at_stop
    assert sql(street, "SELECT count(*) FROM registry.residents")[0][0] == before_register + BURST
    wait_for(lambda: unsent() == 0 and residents() >= before_rollups + BURST, timeout=60, interval=0.5,
             message="every registration in the roll-ups")
    # A batch redelivered after the restart and counted again would land in these seconds.
    eventlet.sleep(3)
    assert residents() == before_rollups + BURST
