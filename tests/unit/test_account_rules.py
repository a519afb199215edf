"""The rules of staff accounts and sessions (services/gateway/accounts.py), without I/O: password strength,
the verdict on each sign-in attempt over generated histories, and when a session stops holding."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from services.gateway import accounts
from shared.errors import ValidationFailed

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("password, complaint", [
    ("Aa1-short", "at least 10"),
    ("alllowercase1", "three of"),
    ("ALLUPPER1234", "three of"),
    ("aaaaaaaaaA1!", "repeat"),
    ("Wangli-2026-x", "user name"),
    ("x" * 200 + "A1-", "at most"),
])
def test_weak_passwords_are_refused_with_a_reason(password, complaint):
    problems = accounts.password_problems(password, "wangli")
    assert any(complaint in p for p in problems), problems


@pytest.mark.parametrize("password", ["Aa1-long-enough", "长海路街道Abc123", "Correct horse 9 battery"])
def test_good_passwords_pass(password):
    assert accounts.password_problems(password, "wangli") == []


@given(st.integers(0, 50))
def test_generated_passwords_always_meet_the_rule(_):
    assert accounts.password_problems(accounts.new_password()) == []


def test_hashes_are_argon2id_and_verify_only_the_password():
    digest = accounts.hash_password("Aa1-long-enough")
    assert digest.startswith("$argon2id$")
    assert accounts.verify_password(digest, "Aa1-long-enough")
    assert not accounts.verify_password(digest, "Aa1-long-enougH")
    assert not accounts.verify_password("not a hash", "Aa1-long-enough")   # a mismatch, never an error
    assert not accounts.verify_password(None, "anything")                  # an unknown name


@pytest.mark.parametrize("over, field", [
    ({"username": "Ab"}, "username"), ({"username": "a b c"}, "username"), ({"display_name": " "}, "display_name"),
    ({"role": "resident"}, "role"), ({"role": "department_feed"}, "role"), ({"node_prefix": "31011001200"}, "node_prefix"),
    ({"node_prefix": "310110013"}, "node_prefix"), ({"role": "organization_leader"}, "organization_id"),
    ({"organization_id": 3}, "organization_id"), ({"password": "weak"}, "password"),
])
def test_a_new_account_is_refused_field_by_field(over, field):
    args = {"username": "zhaomin", "display_name": "赵敏", "role": "community_worker", "node_prefix": "310110012001",
            "organization_id": None, "password": None, **over}
    with pytest.raises(ValidationFailed) as refused:
        accounts.check_new_account(caller_scope="310110012", **args)
    assert field in refused.value.fields


# -- sign-in attempts over generated histories ------------------------------------------------------------

attempts = st.lists(st.tuples(st.booleans(), st.integers(0, 20 * 60)), max_size=40)   # (right password?, seconds later)


@settings(max_examples=300)
@given(attempts, st.booleans())
def test_the_lock_holds_over_any_history(history, disabled):
    """Play attempts against one account as sessions.sign_in applies verdicts; whatever the history,
    nobody is let in while the account is locked or disabled, a right password otherwise always works,
    and MAX_FAILURES failures in a row (with no lock between) always lock."""
    account = {"failed_attempts": 0, "locked_until": None, "disabled_at": T0 if disabled else None}
    now, streak = T0, 0
    for right, later in history:
        now += timedelta(seconds=later)
        verdict = accounts.judge(account, right, now, address_failures=0)
        locked = account["locked_until"] is not None and account["locked_until"] > now
        if locked:
            assert not verdict.ok and verdict.event == "refused_locked" and 0 < verdict.retry_after <= 15 * 60
            continue
        if right and not disabled:
            assert verdict.ok
            account.update(failed_attempts=0, locked_until=None)
            streak = 0
            continue
        assert not verdict.ok
        if not right:
            streak += 1
            if verdict.lock:
                assert streak == accounts.MAX_FAILURES or account["failed_attempts"] + 1 >= accounts.MAX_FAILURES
                account.update(failed_attempts=0, locked_until=now + accounts.LOCK_FOR)
                streak = 0
            else:
                account["failed_attempts"] += 1
                assert account["failed_attempts"] < accounts.MAX_FAILURES
        else:
            assert verdict.event == "refused_disabled"   # the right password of a disabled account


def test_an_unknown_name_never_locks_and_answers_as_a_wrong_password():
    for _ in range(10):
        verdict = accounts.judge(None, False, T0, 0)
        assert verdict == accounts.Verdict(False, "failed")


def test_too_many_failures_from_one_address_refuse_even_the_right_password():
    account = {"failed_attempts": 0, "locked_until": None, "disabled_at": None}
    assert accounts.judge(account, True, T0, accounts.ADDRESS_MAX_FAILURES - 1).ok
    verdict = accounts.judge(account, True, T0, accounts.ADDRESS_MAX_FAILURES)
    assert not verdict.ok and verdict.event == "refused_address" and verdict.retry_after == 15 * 60


@pytest.mark.parametrize("over, state", [
    ({}, "live"),
    ({"ended_at": T0}, "ended"),
    ({"disabled_at": T0}, "disabled"),
    ({"expires_at": T0}, "expired"),
    ({"last_seen_at": T0 - accounts.IDLE}, "idle"),
    ({"last_seen_at": T0 - accounts.IDLE + timedelta(seconds=1)}, "live"),
])
def test_when_a_session_holds(over, state):
    row = {"ended_at": None, "disabled_at": None, "expires_at": T0 + timedelta(hours=1), "last_seen_at": T0, **over}
    assert accounts.session_state(row, T0) == state


@pytest.mark.parametrize("header, hops, expected", [
    ("", 0, "10.0.0.1"), ("203.0.113.9", 0, "10.0.0.1"), ("203.0.113.9", 1, "203.0.113.9"),
    ("6.6.6.6, 203.0.113.9", 1, "203.0.113.9"), ("6.6.6.6, 203.0.113.9, 10.1.1.1", 2, "203.0.113.9"),
    ("203.0.113.9", 2, "10.0.0.1"),
])
def test_the_address_counted_is_the_one_the_trusted_proxies_saw(header, hops, expected):
    from services.gateway.sessions import client_address

    class Request:
        remote_addr = "10.0.0.1"
        headers = {"X-Forwarded-For": header} if header else {}
    assert client_address(Request(), hops) == expected
