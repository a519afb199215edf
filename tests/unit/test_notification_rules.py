"""Notification rules without I/O: opt-outs and critical notices, quiet hours across midnight, back-off,
the token bucket, provider failover, the two-person rule, the state machines, roll-ups."""
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from services.notification import rules
from services.notification.rules import Preferences, ProviderHealth, TokenBucket

CHINA = ZoneInfo("Asia/Shanghai")
NIGHT = Preferences(opted_out=frozenset({("points", "sms"), ("meetings", "*")}), quiet_start=time(22),
                    quiet_end=time(7))


def at(h, m=0, day=23):
    return datetime(2026, 11, day, h, m, tzinfo=CHINA)


def test_opt_outs_hold_for_everything_but_critical_notices():
    assert not rules.wanted(NIGHT, "points", "sms", "normal")
    assert rules.wanted(NIGHT, "points", "wechat", "normal")
    assert not rules.wanted(NIGHT, "meetings", "email", "urgent")
    assert rules.wanted(NIGHT, "meetings", "sms", "critical")


@pytest.mark.parametrize("clock, quiet", [(at(21, 59), False), (at(22), True), (at(23, 30), True), (at(3), True),
                                          (at(6, 59), True), (at(7), False), (at(12), False)])
def test_quiet_hours_cross_midnight(clock, quiet):
    assert rules.in_quiet_hours(NIGHT, clock) is quiet


def test_quiet_hours_hold_non_critical_notices_until_they_end():
    assert rules.send_at(NIGHT, "normal", at(23, 30)) == at(7, day=24)
    assert rules.send_at(NIGHT, "normal", at(3)) == at(7)
    assert rules.send_at(NIGHT, "critical", at(23, 30)) == at(23, 30)
    assert rules.send_at(Preferences(), "normal", at(23, 30)) == at(23, 30)


def test_backoff_grows_to_a_cap_with_full_jitter():
    assert [rules.backoff(a, rng=lambda: 1.0) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert rules.backoff(20, rng=lambda: 1.0) == 300.0
    assert rules.backoff(3, rng=lambda: 0.5) == 2.0
    assert rules.give_up(5, 5) and not rules.give_up(4, 5)


def test_the_token_bucket_lets_a_burst_through_then_paces():
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.1) == 0.0


def test_a_failing_provider_rests_and_the_next_one_takes_over():
    health = ProviderHealth(threshold=2, rest=60)
    providers = ["aliyun_sms", "tencent_sms"]
    assert health.pick(providers, 0) == "aliyun_sms"
    health.record("aliyun_sms", False, 1)
    assert health.pick(providers, 1) == "aliyun_sms"
    health.record("aliyun_sms", False, 2)
    assert health.pick(providers, 3) == "tencent_sms"
    assert health.pick(providers, 62) == "aliyun_sms"          # rested
    health.record("tencent_sms", False, 3)
    health.record("tencent_sms", True, 4)                      # a success resets the count
    health.record("tencent_sms", False, 5)
    assert health.resting_until.get("tencent_sms") is None


def test_a_broadcast_needs_a_second_person():
    draft = {"created_by": "token:a:王建国", "edited_by": "token:b:李明"}
    assert "two-person" in rules.may_approve(draft, "token:a:王建国")
    assert "two-person" in rules.may_approve(draft, "token:b:李明")
    assert rules.may_approve(draft, "token:c:张伟") is None


@pytest.mark.parametrize("status, to, ok", [
    ("draft", "pending_approval", True), ("pending_approval", "approved", True), ("approved", "sending", True),
    ("sending", "sent", True), ("sending", "cancelled", True), ("draft", "approved", False),
    ("sent", "cancelled", False), ("cancelled", "approved", False), ("rejected", "draft", True),
])
def test_broadcast_state_machine(status, to, ok):
    assert (rules.broadcast_move(status, to) is None) == ok


@pytest.mark.parametrize("status, to, ok", [("queued", "sent", True), ("sent", "delivered", True),
                                            ("delivered", "read", True), ("read", "queued", False),
                                            ("failed", "queued", True), ("held", "sent", False),
                                            ("held", "bundled", True), ("queued", "cancelled", True),
                                            ("sent", "cancelled", False), ("bundled", "queued", False)])
def test_delivery_state_machine(status, to, ok):
    assert (rules.delivery_move(status, to) is None) == ok


def test_the_rollup_counts_people_not_deliveries():
    got = rules.rollup([{"community_code": "c1", "resident_id": n, "status": s}
                        for n, s in enumerate(("queued", "sent", "read", "failed"))])
    assert got == {"c1": {"targeted": 4, "reached": 2, "read": 1}}
    # One person on two channels counts once: reached by SMS, read in the inbox.
    two = rules.rollup([{"community_code": "c1", "resident_id": 9, "status": "sent"},
                        {"community_code": "c1", "resident_id": 9, "status": "read"},
                        {"community_code": "c2", "resident_id": 8, "status": "failed"}])
    assert two == {"c1": {"targeted": 1, "reached": 1, "read": 1}, "c2": {"targeted": 1, "reached": 0, "read": 0}}


def test_a_bucket_grants_what_its_rate_allows_and_refills():
    bucket = rules.TokenBucket(rate=10, burst=10, last=0.0)
    assert bucket.grant(0.0, 25) == 10          # a burst, then nothing
    assert bucket.grant(0.0, 5) == 0
    assert bucket.grant(0.5, 25) == 5           # half a second refills five
    assert bucket.grant(100.0, 3) == 3 and bucket.tokens == 7   # never more than the burst
