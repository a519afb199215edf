"""The gateway's worker slots (services/gateway/http.py `WorkerSlots`), with greenthreads and no I/O:
first come first served, a wait that ends on time, a stop that sends everyone away, and no slot lost
to a waiter that is killed."""
import eventlet
import pytest

from services.gateway.http import WorkerSlots


def test_a_slot_given_back_goes_to_the_first_in_line_not_to_a_newcomer():
    slots = WorkerSlots(1)
    assert slots.take_now()
    served = []

    def wait(name):
        assert slots.take(5) == WorkerSlots.TAKEN
        served.append(name)
        eventlet.sleep(0.01)
        slots.give_back()
    line = [eventlet.spawn(wait, name) for name in ("first", "second", "third")]
    eventlet.sleep(0)   # all three in line
    slots.give_back()
    assert not slots.take_now()   # someone is in line: a newcomer does not jump it
    for gt in line:
        gt.wait()
    assert served == ["first", "second", "third"]
    assert slots.take_now() and not slots.take_now()   # the one slot is back, and only one


def test_a_wait_ends_when_its_time_is_up_and_leaves_the_line():
    slots = WorkerSlots(1)
    assert slots.take_now()
    began = eventlet.hubs.get_hub().clock()
    assert slots.take(0.1) == WorkerSlots.TIMED_OUT
    assert 0.1 <= eventlet.hubs.get_hub().clock() - began < 1
    slots.give_back()
    assert slots.take_now()   # nobody left in line took it


def test_closing_sends_everyone_in_line_away_at_once():
    slots = WorkerSlots(1)
    assert slots.take_now()
    line = [eventlet.spawn(slots.take, 30) for _ in range(3)]
    eventlet.sleep(0)
    slots.close()
    with eventlet.Timeout(1):
        assert [gt.wait() for gt in line] == [WorkerSlots.CLOSED] * 3


@pytest.mark.parametrize("handed_a_slot_first", [False, True])
def test_a_waiter_killed_loses_no_slot(handed_a_slot_first):
    slots = WorkerSlots(1)
    assert slots.take_now()
    waiter = eventlet.spawn(slots.take, 30)
    eventlet.sleep(0)
    if handed_a_slot_first:
        slots.give_back()      # handed to the waiter, which is killed before it runs again
    waiter.kill()
    if not handed_a_slot_first:
        slots.give_back()
    assert slots.take_now() and not slots.take_now()
