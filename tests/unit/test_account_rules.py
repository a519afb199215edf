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
    ({"role": "street_admin"}, "role"), ({"role": "operator"}, "role"),   # admins come from the command line
])
def test_a_new_account_is_refused_field_by_field(over, field):
    args = {"username": "zhaomin", "display_name": "赵敏", "role": "community_worker", "node_prefix": "310110012001",
            "organization_id": None, "password": None, **over}
    with pytest.raises(ValidationFailed) as refused:
        accounts.check_new_account(caller_scope="310110012", **args)
    assert field in refused.value.fields


# -- sign-in attempts over generated histories ------------------------------------------------------------

attempts = st.lists(st.tuples(st.booleans(), st.integers(0, 20 * 60)), max_size=40)   # (right password?, seconds later)


def attempt(account, right, now, address_failures=0, unknown=None):
    """One attempt as sessions.sign_in makes it: refused before the password is looked at, or judged
    after, with the failure counted first: on the account's row, or for no account on the unknown name's."""
    refused = accounts.refusal(account if unknown is None else unknown, now, address_failures)
    if refused:
        return refused
    if unknown is not None:
        return accounts.verdict(None, False, unknown["failed_attempts"] + 1)
    failures = 0 if right else account["failed_attempts"] + 1
    return accounts.verdict(account, right, failures)


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
        verdict = attempt(account, right, now)
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
                assert streak == accounts.MAX_FAILURES and verdict.event == "locked"
                account.update(failed_attempts=0, locked_until=now + accounts.LOCK_FOR)
                streak = 0
            else:
                account["failed_attempts"] += 1
                assert account["failed_attempts"] < accounts.MAX_FAILURES
        else:
            assert verdict.event == "refused_disabled"   # the right password of a disabled account


@settings(max_examples=100)
@given(st.lists(st.booleans(), min_size=1, max_size=12))
def test_an_unknown_name_answers_as_an_account_does_attempt_by_attempt(rights):
    """Wrong passwords against an account and against a name nobody has get the same answers in the same
    order (401s, then the lock's 429 on the fifth, then 429s): a lock says nothing of which names exist."""
    account = {"failed_attempts": 0, "locked_until": None, "disabled_at": None}
    name = {"failed_attempts": 0, "locked_until": None, "disabled_at": None}
    for _ in rights:
        known = attempt(account, False, T0)
        unknown = attempt(None, False, T0, unknown=name)
        assert (known.ok, known.event, known.retry_after) == (unknown.ok, unknown.event, unknown.retry_after)
        for row, verdict in ((account, known), (name, unknown)):
            if verdict.event == "locked":
                row.update(failed_attempts=0, locked_until=T0 + accounts.LOCK_FOR)
            elif verdict.event == "failed":
                row["failed_attempts"] += 1


def test_too_many_failures_from_one_address_refuse_even_the_right_password():
    account = {"failed_attempts": 0, "locked_until": None, "disabled_at": None}
    assert attempt(account, True, T0, accounts.ADDRESS_MAX_FAILURES - 1).ok
    verdict = attempt(account, True, T0, accounts.ADDRESS_MAX_FAILURES)
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


TRUSTED = accounts.trusted_networks("10.0.0.0/8, 192.168.1.5")


@pytest.mark.parametrize("remote, header, expected", [
    ("10.0.0.1", "", "10.0.0.1"),                                   # a trusted proxy that forwarded nothing
    ("203.0.113.7", "6.6.6.6", "203.0.113.7"),                     # an untrusted peer is itself, whatever it says
    ("10.0.0.1", "203.0.113.9", "203.0.113.9"),                    # behind one trusted proxy
    ("10.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),           # the caller prepended a lie: not believed
    ("10.0.0.1", "6.6.6.6, 203.0.113.9, 192.168.1.5", "203.0.113.9"),   # two trusted proxies
    ("10.0.0.1", "garbage", "10.0.0.1"),                           # garbage ends the walk at the last good hop
    ("10.0.0.1", "203.0.113.9\x00", "10.0.0.1"),                  # a NUL never reaches the database
    ("10.0.0.1", "10.0.0.2, 10.0.0.3", "10.0.0.2"),                # all trusted: the outermost seen
    ("", "203.0.113.9", "unknown"),
])
def test_the_address_counted_is_the_one_the_trusted_proxies_saw(remote, header, expected):
    assert accounts.client_address(remote, header, TRUSTED) == expected


def test_only_a_trusted_proxy_says_the_connection_is_https():
    assert accounts.behind_tls("10.0.0.1", "https", TRUSTED)
    assert not accounts.behind_tls("203.0.113.7", "https", TRUSTED)
    assert not accounts.behind_tls("10.0.0.1", "http", TRUSTED)


def test_unknown_names_are_kept_only_as_a_keyed_hash():
    key = accounts.name_key("secret", "aA1-my-password")
    assert "password" not in key and len(key) == 64
    assert key == accounts.name_key("secret", "aA1-my-password") != accounts.name_key("other", "aA1-my-password")
