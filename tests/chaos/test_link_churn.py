"""A federation link's connection closed ten times in a minute while the street publishes.

The link reconnects by itself each time; whatever was in flight is redelivered or sent again on
request. Afterwards the district holds the street's roll-ups exactly.
"""
import threading
import time

import requests

from tests.chaos.conftest import measured, publish_backlog, rollups_agree
from tests.integration.conftest import wait_for

MGMT = "http://127.0.0.1:15672/api"


def link_connections(street_vhost):
    conns = requests.get(f"{MGMT}/connections", auth=("guest", "guest"), timeout=10).json()
    return [c["name"] for c in conns if c.get("vhost") == street_vhost
            and "Federation link" in str((c.get("client_properties") or {}).get("connection_name", ""))]


def test_a_link_closed_ten_times_in_a_minute_loses_and_doubles_nothing(tree, request):
    vhost = tree.street["AMQP_URI"].rsplit("/", 1)[1]
    wait_for(lambda: link_connections(vhost), timeout=60, message="the federation link connected")
    stop = threading.Event()

    def publish():
        while not stop.is_set():
            publish_backlog(tree.street, 5)
            time.sleep(0.2)
    writer = threading.Thread(target=publish, daemon=True)
    writer.start()
    closed = 0
    try:
        for _ in range(10):
            time.sleep(6)
            for name in link_connections(vhost):
                r = requests.delete(f"{MGMT}/connections/{requests.utils.quote(name, safe='')}",
                                    auth=("guest", "guest"), timeout=10)
                closed += r.status_code == 204
    finally:
        stop.set()
        writer.join(timeout=60)
    assert closed >= 10
    started = time.monotonic()
    wait_for(lambda: tree.facts_unsent() == 0 and rollups_agree(tree), timeout=180, interval=1,
             message="the district exact after the churn")
    measured(request, "link connections closed", closed)
    measured(request, "from the last close to exact figures (s)", round(time.monotonic() - started, 1))
