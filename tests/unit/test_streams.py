"""The sequence rules of shared/streams.py, without I/O: contiguity for any arrival order, and
which resend requests a sender acts on."""
from hypothesis import given, strategies as st

from shared import facts, streams

PARENT, OTHER = facts.Signer(facts._b64(b"\x01" * 32)), facts.Signer(facts._b64(b"\x02" * 32))
OWN = {"service": "aggregator", "level": "district", "node_code": "310110", "instance": "district-310110"}


@given(st.lists(st.integers(1, 60), max_size=80), st.integers(0, 5))
def test_contiguous_is_the_longest_unbroken_run_whatever_the_order(arrivals, start):
    contiguous, seen = start, []
    for seq in arrivals:   # one at a time, as groups would bring them
        seen.append(seq)
        contiguous, seen = streams.advance(contiguous, seen)
    got = set(arrivals) | set(range(1, start + 1))
    expected = start
    while expected + 1 in got:
        expected += 1
    assert contiguous == expected
    assert seen == sorted({s for s in arrivals if s > expected})   # what is kept is exactly what lies above


def test_a_gap_is_what_lies_between_contiguous_and_the_highest_seen():
    assert streams.advance(0, [1, 2, 4, 5]) == (2, [4, 5])
    assert streams.advance(2, [3, 4, 5]) == (5, [])
    assert streams.advance(5, [3, 5]) == (5, [])


def request(signer=PARENT, **change):
    body = streams.resend_request(signer, OWN, "310110012", "registry", "facts", [7, 3, 5])
    if change:
        body = signer.sign({**{k: v for k, v in body.items() if k != "signature"}, **change})
    return body


def test_a_sender_acts_on_its_parents_or_its_own_requests_addressed_to_it_only():
    keys = [OTHER.public_key, PARENT.public_key]
    assert request()["seqs"] == [3, 5, 7]
    assert streams.request_refusal(request(), "310110012", "registry", keys) is None
    assert streams.request_refusal(request(), "310110013", "registry", keys).startswith("addressed to")
    assert streams.request_refusal(request(), "310110012", "points", keys).startswith("addressed to")
    stranger = facts.Signer(facts._b64(b"\x03" * 32))
    assert "signature" in streams.request_refusal(request(stranger), "310110012", "registry", keys)
    forged = {**request(), "seqs": [1, 2, 3]}   # changed after signing
    assert "signature" in streams.request_refusal(forged, "310110012", "registry", keys)
    for bad in ([], [0], [-1], ["3"], [True], list(range(1, streams.MAX_SEQS_PER_REQUEST + 2))):
        assert streams.request_refusal(request(seqs=bad), "310110012", "registry", keys) == "malformed", bad
    assert streams.request_refusal({"kind": "stream_head"}, "310110012", "registry", keys) == "not a resend request"
    assert streams.request_refusal(None, "310110012", "registry", [None]) == "not a resend request"


def test_ranges_read_well_in_a_log_line():
    assert streams.ranges([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"
    assert streams.ranges([]) == ""
