"""The relay's confirm bookkeeping against a fake channel: which rows count as delivered."""
from types import SimpleNamespace

from shared.outbox import Publisher


class FakeBroker:
    """Plays back broker frames when the publisher drains events."""

    def __init__(self, publisher, script):
        self.publisher, self.script, self.published = publisher, script, []

    def basic_publish(self, msg, exchange, routing_key, mandatory):
        assert mandatory is True
        self.published.append(msg)

    def drain_events(self, timeout):
        frame = self.script.pop(0)
        kind, arg = frame[0], frame[1:]
        if kind == "ack":
            self.publisher._on_ack(*arg)
        elif kind == "nack":
            self.publisher._on_nack(*arg)
        elif kind == "return":
            msg = self.published[arg[0] - 1]
            self.publisher._on_return(None, "probe.events", "x", SimpleNamespace(properties=msg.properties))


def rows(n):
    return [{"id": 100 + i, "event_id": f"00000000-0000-0000-0000-{i:012d}", "exchange": "probe.events",
             "routing_key": "item_added", "body": {"n": i}, "correlation_id": None} for i in range(1, n + 1)]


def run(script, n):
    publisher = Publisher("amqp://unused")
    broker = FakeBroker(publisher, script)
    publisher.channel, publisher.conn, publisher.next_tag = broker, broker, 1
    return publisher.publish_batch(rows(n))


def test_a_multiple_ack_settles_every_tag_up_to_it():
    assert run([("ack", 3, True)], 3) == {101: "ok", 102: "ok", 103: "ok"}


def test_nacked_and_returned_messages_are_not_delivered():
    # basic.return for message 2 arrives before its ack, as RabbitMQ sends them
    outcome = run([("ack", 1, False), ("return", 2), ("ack", 2, False), ("nack", 3, False)], 3)
    assert outcome == {101: "ok", 102: "unroutable", 103: "nack"}


def test_it_waits_until_every_confirm_arrived():
    script = [("ack", 1, False), ("ack", 2, False), ("ack", 4, True)]
    assert run(script, 4) == {101: "ok", 102: "ok", 103: "ok", 104: "ok"}
    assert script == []
