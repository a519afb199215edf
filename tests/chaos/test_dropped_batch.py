"""A fact batch the street's broker confirmed but the district never got is found and sent again.

The district's queue is unbound from its `facts` exchange for a moment while the street registers
residents: federation then has nowhere to carry the street's batches, and drops them, although
the street's broker confirmed every one (its own aggregator took them). Nothing more is registered
afterwards, so only the street relay's head announcement can reveal the gap at the end of the
sequence. The district must notice, ask for exactly what it lacks, and count it once.
"""
import time

from kombu import Connection

from services.aggregator.consumer import facts_queue
from shared import federation
from shared.messaging import FACTS
from tests.chaos.conftest import measured
from tests.e2e.test_federation import STREET_A, facts_links
from tests.integration.conftest import wait_for


def test_a_confirmed_batch_lost_between_levels_is_asked_for_again_and_counted_once(tree, request):
    district = tree.district
    mgmt = federation.Management(district["RABBIT_MANAGEMENT_URL"], district["AMQP_URI"])
    wait_for(lambda: facts_links(mgmt) == 1, timeout=60, message="the facts link up")
    for _ in range(10):
        assert tree.register()[0] == 201
    wait_for(tree.exact, timeout=60, interval=0.5, message="the district to hold the first ten")

    queue = facts_queue("aggregator", 0).name
    with Connection(district["AMQP_URI"]) as conn:
        channel = conn.channel()
        channel.queue_unbind(queue, FACTS.name, "*.*")
        try:
            time.sleep(2)   # federation drops the upstream binding
            for _ in range(5):
                assert tree.register()[0] == 201
            wait_for(lambda: tree.facts_unsent() == 0 and tree.residents_in(tree.street) == tree.registered(),
                     timeout=30, message="the street's batches confirmed and counted by its own aggregator")
            time.sleep(2)   # what federation would have carried, it has carried (or dropped)
        finally:
            channel.queue_bind(queue, FACTS.name, "*.*")
    lost = tree.registered() - tree.residents_in(district)
    assert lost > 0, "nothing was dropped: the test did not test anything"
    started = time.monotonic()
    wait_for(tree.exact, timeout=120, interval=0.5, message="the district exact again, by resends")
    measured(request, "batches lost", lost)
    measured(request, "from the queue bound again to exact figures (s)", round(time.monotonic() - started, 1))
    # Asked for, answered, and counted once: exact is equality, so nothing was counted twice.
    ((_, service, stream, contiguous, highest, requested, answered),) = [
        p for p in tree.positions(district) if p[0] == STREET_A]
    assert (service, stream) == ("registry", "facts")
    assert contiguous == highest and requested >= 1 and answered >= 1
    assert tree.residents_in(district) == tree.registered() == 15
    assert not tree.exited()
