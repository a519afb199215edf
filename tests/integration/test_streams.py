"""Sequenced messages on real PostgreSQL (shared/streams.py): the receiver's positions, gaps and
resend requests, a head revealing a lost last message, and the sender answering a request from
its outbox, with what it no longer keeps said apart.

Real: PostgreSQL (the test database, every schema migrated); nothing is published (the outbox rows
are read back), so no broker is needed.
"""
import json

import psycopg

from shared import envelope, facts, streams
from shared.db import transaction

STREET = "310110012"


def positions(config):
    with transaction(config["DATABASE_URL"], "aggregator") as tx:
        return {(p["service"], p["stream"]): p for p in streams.positions(tx)}


def test_gaps_are_tracked_asked_for_once_due_and_closed_by_what_arrives(config):
    dsn, signer = config["DATABASE_URL"], facts.Signer.from_config(config)
    own = envelope.source_from_config("aggregator", config)
    with transaction(dsn, "aggregator") as tx:
        streams.record(tx, [(STREET, "registry", "facts", s) for s in (5, 6, 8)])
    p = positions(config)[("registry", "facts")]
    assert (p["contiguous"], p["highest"], p["missing"]) == (6, 8, 1)   # counting starts below the first seen
    with transaction(dsn, "aggregator") as tx:
        streams.record_heads(tx, [(STREET, "registry", "facts", 10)])   # a lost last message is a gap too
        streams.record(tx, [(STREET, "registry", "facts", 3)])          # below the start: already counted
    p = positions(config)[("registry", "facts")]
    assert (p["contiguous"], p["highest"], p["missing"]) == (6, 10, 3)
    with transaction(dsn, "aggregator", own, signer) as tx:
        asked = streams.request_missing(tx, signer, own, after_seconds=0)
        again = streams.request_missing(tx, signer, own, after_seconds=0)   # not due again yet: back-off
    assert asked == [(STREET, "registry", "facts", [7, 9, 10])] and again == []
    with psycopg.connect(dsn) as conn:
        (key, body), = conn.execute("SELECT routing_key, body FROM aggregator.outbox WHERE exchange = 'directives'")
    assert key == "resend.310110012.registry" and body["seqs"] == [7, 9, 10]
    assert streams.request_refusal(body, STREET, "registry", [signer.public_key]) is None
    with transaction(dsn, "aggregator") as tx:
        streams.record(tx, [(STREET, "registry", "facts", s) for s in (10, 7, 9)])
    p = positions(config)[("registry", "facts")]
    assert (p["contiguous"], p["missing"], p["resends_requested"], p["resends_answered"]) == (10, 0, 1, 1)
    assert p["oldest_gap_seconds"] == 0


def test_a_sender_sends_requested_batches_again_unchanged_and_says_what_it_no_longer_has(config):
    dsn, signer = config["DATABASE_URL"], facts.Signer.from_config(config)
    source = envelope.source_from_config("registry", config)
    with transaction(dsn, "registry", source, signer) as tx:
        sent = [tx.publish_facts("resident_registered", [facts.fact("resident_registered", STREET + "001",
                                                                    "2026-11-20", sex="F")]) for _ in range(3)]
    assert [b["seq"] for b in sent] == [1, 2, 3]   # gapless, from 1, in the writing transaction
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE registry.outbox SET sent_at = now() WHERE stream = 'facts'")
    request = streams.resend_request(signer, source, STREET, "registry", "facts", [2, 40])
    with transaction(dsn, "registry", source) as tx:
        assert streams.answer(tx, request) == ([2], [40])
    with psycopg.connect(dsn) as conn:
        unsent = conn.execute("SELECT seq, body::text FROM registry.outbox WHERE stream = 'facts' AND sent_at IS NULL"
                              ).fetchall()
    assert [seq for seq, _ in unsent] == [2]
    assert json.loads(unsent[0][1]) == sent[1]   # the same signed batch, to the byte's meaning
    with transaction(dsn, "registry", source, signer) as tx:
        assert streams.allocate(tx, "facts") == 4   # a number is never given twice


def test_a_childs_request_is_passed_on_under_the_parents_key_only_when_the_child_signed_it(config):
    """A district's aggregator takes a street's request for something the district sent down, checks
    it with the street's registered key, and writes it again, signed by the district, for the
    service asked; anything else is refused with a reason and nothing is written."""
    district = {**config, "LEVEL": "district", "NODE_CODE": "310110", "INSTANCE": "district-310110"}
    dsn, signer = config["DATABASE_URL"], facts.Signer.from_config(district)
    own = envelope.source_from_config("aggregator", district)
    street_signer = facts.Signer(facts._b64(b"\x32" * 32))
    street = {"service": "notification", "level": "street", "node_code": STREET, "instance": f"street-{STREET}"}
    keys = {STREET: street_signer.public_key}

    def ask(stream, seqs=(2,), by=street_signer, to="310110", service="notification", sender=street):
        body = streams.resend_request(by, sender, to, service, stream, list(seqs))
        with transaction(dsn, "aggregator", own, signer) as tx:
            return streams.forward_request(tx, signer, own, body, keys.get)

    assert ask("broadcasts", to="3101") is None                      # this instance's own, going up: not ours
    refused = [ask("broadcasts", by=signer),                          # not the street's signature
               ask("broadcasts", sender={**street, "node_code": "310110013"}),   # not a registered child
               ask("facts"),                                          # a stream the street sends up
               ask("answers.310110013", service="consultation"),      # another street's answers
               ask("broadcasts", service="no such.service")]
    assert all(refused) and len(set(refused)) == 5, refused
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM aggregator.outbox").fetchone()[0] == 0
    assert ask("broadcasts", seqs=(2, 3)) is None and ask(f"answers.{STREET}", service="consultation") is None
    with psycopg.connect(dsn) as conn:
        sent = conn.execute("SELECT exchange, routing_key, body FROM aggregator.outbox ORDER BY id").fetchall()
    assert [(e, k) for e, k, _ in sent] == [("directives", "resend.310110.notification"),
                                            ("directives", "resend.310110.consultation")]
    body = sent[0][2]
    assert body["seqs"] == [2, 3] and body["for_child"] == STREET and body["from"]["node_code"] == "310110"
    # The district's own service takes it: signed with the district's own key.
    assert streams.request_refusal(body, "310110", "notification", [signer.public_key, None]) is None


def test_a_receiver_counts_only_the_stream_it_follows_and_asks_a_parent_upward(config):
    dsn, signer = config["DATABASE_URL"], facts.Signer.from_config(config)
    own = envelope.source_from_config("consultation", config)
    with transaction(dsn, "consultation", own, signer) as tx:
        mine, other = streams.answers_stream(STREET), streams.answers_stream("310110013")
        assert streams.count(tx, "310110", "consultation", mine, {"stream": mine, "seq": 1})
        assert not streams.count(tx, "310110", "consultation", mine, {"stream": other, "seq": 2})
        assert not streams.count(tx, "310110", "consultation", mine, {"v": 1})          # sent before numbering
        assert not streams.count(tx, "310110", "consultation", mine, {"stream": mine, "seq": True})
        assert streams.count(tx, "310110", "consultation", mine, {"kind": "stream_head", "stream": mine, "seq": 3})
    with transaction(dsn, "consultation") as tx:
        (p,) = streams.positions(tx)
    assert (p["source"], p["stream"], p["contiguous"], p["highest"], p["missing"]) == ("310110", mine, 1, 3, 2)
    with transaction(dsn, "consultation", own, signer) as tx:
        asked = streams.request_missing(tx, signer, own, after_seconds=0)
    assert asked == [("310110", "consultation", mine, [2, 3])]
    with psycopg.connect(dsn) as conn:
        (exchange, key), = conn.execute("SELECT exchange, routing_key FROM consultation.outbox").fetchall()
    assert (exchange, key) == ("cases", "resend.310110.consultation")   # up: the path that reaches the parent


def test_an_operator_lists_what_is_counted_and_gives_up_on_what_a_sender_no_longer_has(config):
    from click.testing import CliRunner
    from linli.cli import main as cli
    from tests.conftest import cli_env
    dsn = config["DATABASE_URL"]
    with transaction(dsn, "aggregator") as tx:
        streams.record(tx, [(STREET, "points", "facts", s) for s in (1, 2, 5, 7)])
    with transaction(dsn, "notification") as tx:
        streams.record(tx, [("310110", "notification", "broadcasts", 4)])
    env = cli_env(config)
    listing = CliRunner().invoke(cli, ["streams", "list"], env=env)
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert any(line.startswith("310110 ") and "broadcasts" in line and "nothing missing" in line for line in lines)
    assert any(line.startswith(STREET) and "points" in line and "3 missing" in line for line in lines)
    closed = CliRunner().invoke(cli, ["streams", "close-gap", "--source", STREET, "--service", "points",
                                      "--stream", "facts"], env=env)
    assert closed.exit_code == 0 and "gave up on 3-4, 6" in closed.output, closed.output
    with transaction(dsn, "aggregator") as tx:
        (p,) = streams.positions(tx)
        assert (p["contiguous"], p["missing"], p["oldest_gap_seconds"]) == (7, 0, 0)
        streams.record(tx, [(STREET, "points", "facts", 8)])    # counting goes on from there
    with transaction(dsn, "aggregator") as tx:
        assert streams.positions(tx)[0]["contiguous"] == 8
    unknown = CliRunner().invoke(cli, ["streams", "close-gap", "--source", "310110099", "--service", "points",
                                       "--stream", "facts"], env=env)
    assert unknown.exit_code != 0 and "nothing of 310110099/points facts" in unknown.output
