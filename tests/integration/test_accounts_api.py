"""Staff accounts, sign-in and console sessions over the real HTTP gateway, PostgreSQL and RabbitMQ.

What must hold: a session cookie is HttpOnly and SameSite=Strict and reaches exactly what a token of
the same role and scope would; a change made with it needs the CSRF token, and is refused with nothing
written without it; a wrong password and an unknown name answer alike; five failures lock the account
and many failures from one address are refused; idle, expired, signed-out, disabled and reset sessions
end; admins manage only the accounts inside their scope, and an account outside it answers as one that
does not exist; every sign-in, failure, lock and change is in the sign-in audit.
"""
import gzip

import pytest

from services.gateway import accounts
from tests.integration.conftest import assert_problem
from tests.integration.test_residents_api import COMMUNITY, OTHER_COMMUNITY, id_number, resident

PASSWORD = "Aa1-long-enough"


def events(sql, username=None):
    rows = sql("SELECT event, username FROM gateway.sign_in_events ORDER BY event_id")
    return [r["event"] for r in rows if username is None or r["username"] == username]


def test_a_signed_in_person_reaches_what_a_token_of_their_role_and_scope_would(api, make_account, person, sql):
    assert api.post("/api/v1/residents", json=resident()).status_code == 201
    other = api.post("/api/v1/residents", json=resident(name="李明", id_number=id_number(seq="135"),
                                                        community_code=OTHER_COMMUNITY, grid_code=None)).json()
    make_account("wangli", "community_worker", COMMUNITY, name="王丽")
    p = person()
    resp = p.sign_in("WangLi ", PASSWORD)   # names are matched in lower case, without surrounding space
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["account"]["username"] == "wangli" and body["account"]["role"] == "community_worker"
    assert "people:write" in body["permissions"] and "accounts:admin" not in body["permissions"]
    assert body["instance"]["code"] == "310110012" and body["idle_minutes"] == 30
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie   # plain HTTP here; behind TLS the cookie is Secure (test below)
    assert resp.headers["Cache-Control"] == "no-store"

    listed = p.get("/api/v1/residents").json()["items"]
    assert [r["community_code"] for r in listed] == [COMMUNITY]
    # Another community's resident answers as one that does not exist (issue 19's rule holds for people too).
    outside, missing = p.get(f"/api/v1/residents/{other['id']}"), p.get("/api/v1/residents/987654")
    assert outside.status_code == missing.status_code == 404
    assert outside.json()["errors"] == {"id": [f"no resident {other['id']}"]}
    # A worker is refused what their role may not do, exactly as their token would be.
    assert_problem(p.get("/api/v1/accounts"), 403, "role")
    assert_problem(p.change("POST", "/api/v1/workers", json={}), 403, "role")
    # Their reads are audited as the account, by name.
    actors = {r["actor"] for r in sql("SELECT actor FROM registry.audit_log")}
    assert "account:wangli:王丽" in actors


def test_a_change_without_the_csrf_token_is_refused_and_writes_nothing(api, make_account, person, sql):
    make_account("admin1")
    p = person()
    p.sign_in("admin1", PASSWORD)
    before = sql("SELECT count(*) AS n FROM registry.residents")[0]["n"]
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}, {"X-CSRF-Token": ""}):
        resp = p.post("/api/v1/residents", json=resident(), headers=headers)
        assert_problem(resp, 403, "X-CSRF-Token")
    assert sql("SELECT count(*) AS n FROM registry.residents")[0]["n"] == before
    assert_problem(p.delete("/api/v1/session"), 403, "X-CSRF-Token")   # nor can a page sign them out
    assert p.get("/api/v1/session").status_code == 200
    # With the token the same request is made.
    assert p.change("POST", "/api/v1/residents", json=resident()).status_code == 201
    # Reads need none.
    assert p.get("/api/v1/residents").status_code == 200


def test_a_bearer_token_wins_over_a_cookie_and_machines_need_no_csrf(api, make_account, person, make_token):
    make_account("worker1", "community_worker", COMMUNITY)
    p = person()
    p.sign_in("worker1", PASSWORD)
    token = make_token("street_admin")
    resp = p.post("/api/v1/residents", json=resident(community_code=OTHER_COMMUNITY, grid_code=None),
                  headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201, resp.text


def test_a_wrong_password_and_an_unknown_name_answer_alike(api, make_account, person, sql):
    make_account("known1")
    p = person()
    wrong, unknown = p.sign_in("known1", "Wrong-password-1"), p.sign_in("nobody1", "Wrong-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert {k: v for k, v in wrong.json().items() if k != "correlation_id"} == \
        {k: v for k, v in unknown.json().items() if k != "correlation_id"}
    assert "Set-Cookie" not in wrong.headers
    assert events(sql) == ["failed", "failed"]
    # What was typed as an unknown name is not kept (it is sometimes a password in the wrong box).
    assert [r["username"] for r in sql("SELECT username FROM gateway.sign_in_events ORDER BY event_id")] == \
        ["known1", "(unknown)"]
    assert_problem(p.post("/api/v1/session", json={"username": "known1"}), 422, "password")
    assert_problem(p.post("/api/v1/session", json={"username": "", "password": "x"}), 422, "username")


def test_five_failures_lock_the_account_even_against_the_right_password(api, make_account, person, sql):
    make_account("locky")
    p = person()
    for _ in range(accounts.MAX_FAILURES - 1):
        assert p.sign_in("locky", "Wrong-password-1").status_code == 401
    locked = p.sign_in("locky", "Wrong-password-1")
    assert_problem(locked, 429, "username")
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    right = p.sign_in("locky", PASSWORD)
    assert_problem(right, 429, "username")
    assert "Set-Cookie" not in right.headers
    assert events(sql, "locky")[-3:] == ["failed", "locked", "refused_locked"]
    # Once the lock has run out, the right password works and the count starts again.
    sql("UPDATE gateway.staff_accounts SET locked_until = now() - interval '1 second' WHERE username = 'locky'")
    assert p.sign_in("locky", PASSWORD).status_code == 200
    assert sql("SELECT failed_attempts FROM gateway.staff_accounts WHERE username = 'locky'")[0]["failed_attempts"] == 0


def test_an_unknown_name_locks_as_an_account_does(api, make_account, person):
    """Locking says nothing of which names exist: the same answers, attempt by attempt."""
    make_account("real1")
    p = person()
    for _ in range(accounts.MAX_FAILURES + 1):
        known, unknown = p.sign_in("real1", "Wrong-password-1"), p.sign_in("ghost1", "Wrong-password-1")
        assert known.status_code == unknown.status_code
        assert known.json()["errors"] == unknown.json()["errors"]
        assert known.headers.get("Retry-After") == unknown.headers.get("Retry-After")
    assert known.status_code == 429


def test_many_failures_from_one_address_are_refused_whatever_the_account(api, make_account, person, sql):
    make_account("victim")
    p = person()
    for i in range(accounts.ADDRESS_MAX_FAILURES):
        assert p.sign_in(f"guess{i:03d}", "Wrong-password-1").status_code == 401
    resp = person().sign_in("victim", PASSWORD)   # another client, the same address
    assert_problem(resp, 429, "address")
    assert events(sql)[-1] == "refused_address"
    for _ in range(5):   # refusals cost the caller nothing: they are audited once a minute, not each
        person().sign_in("victim", PASSWORD)
    assert events(sql).count("refused_address") == 1
    # A forwarded address is believed only from a proxy in TRUSTED_PROXIES (none here).
    spoofed = person().post("/api/v1/session", json={"username": "victim", "password": PASSWORD},
                            headers={"X-Forwarded-For": "203.0.113.9"})
    assert spoofed.status_code == 429


@pytest.mark.parametrize("column, value", [("last_seen_at", "now() - interval '31 minutes'"),
                                           ("expires_at", "now() - interval '1 second'")])
def test_an_idle_or_expired_session_ends(api, make_account, person, sql, column, value):
    make_account("sleepy")
    p = person()
    p.sign_in("sleepy", PASSWORD)
    sql(f"UPDATE gateway.staff_sessions SET {column} = {value}")
    assert_problem(p.get("/api/v1/session"), 401, accounts.COOKIE)
    assert_problem(p.get("/api/v1/residents"), 401, accounts.COOKIE)
    assert events(sql, "sleepy") == ["signed_in", "expired"]   # audited once
    assert sql("SELECT count(*) AS n FROM gateway.staff_sessions WHERE ended_at IS NULL")[0]["n"] == 0


def test_signing_out_ends_the_session_and_clears_the_cookie(api, make_account, person, sql):
    make_account("leaver")
    p = person()
    p.sign_in("leaver", PASSWORD)
    cookie = p.cookies.get(accounts.COOKIE)
    resp = p.change("DELETE", "/api/v1/session")
    assert resp.status_code == 204
    assert accounts.COOKIE not in p.cookies
    # The old cookie, replayed, is no session any more.
    replay = person()
    replay.cookies.set(accounts.COOKIE, cookie)
    assert replay.get("/api/v1/session").status_code == 401
    assert events(sql, "leaver") == ["signed_in", "signed_out"]


@pytest.mark.parametrize("cookie", ["", "x", "é" * 10, "a" * 5000, "../../etc/passwd"])
def test_a_forged_cookie_is_no_session(api, person, cookie):
    p = person()
    p.cookies.set(accounts.COOKIE, cookie)
    assert p.get("/api/v1/session").status_code == 401
    assert p.get("/api/v1/residents").status_code == 401


def test_a_reset_password_must_be_changed_before_anything_else(api, make_account, person, sql):
    make_account("fresh", "community_worker", COMMUNITY, must_change=True)
    p = person()
    assert p.sign_in("fresh", PASSWORD).json()["account"]["must_change_password"] is True
    assert_problem(p.get("/api/v1/residents"), 403, "password")
    assert_problem(p.change("POST", "/api/v1/session/password",
                            json={"current_password": "Wrong-password-1", "new_password": "Bb2-long-enough"}),
                   422, "current_password")
    weak = assert_problem(p.change("POST", "/api/v1/session/password",
                                   json={"current_password": PASSWORD, "new_password": "fresh12345"}), 422,
                          "new_password")
    assert any("three" in m for m in weak["errors"]["new_password"])
    assert any("user name" in m for m in weak["errors"]["new_password"])
    other = person()
    other.sign_in("fresh", PASSWORD)
    assert p.change("POST", "/api/v1/session/password",
                    json={"current_password": PASSWORD, "new_password": "Bb2-long-enough"}).status_code == 204
    assert p.get("/api/v1/residents").status_code == 200        # under the new cookie the change gave
    assert other.get("/api/v1/session").status_code == 401      # the account's other sessions ended
    assert person().sign_in("fresh", PASSWORD).status_code == 401
    assert person().sign_in("fresh", "Bb2-long-enough").status_code == 200
    assert "password_changed" in events(sql, "fresh")


def test_wrong_current_passwords_lock_and_sign_out_a_session_left_open(api, make_account, person):
    make_account("opened")
    p = person()
    p.sign_in("opened", PASSWORD)
    for _ in range(accounts.MAX_FAILURES - 1):
        assert p.change("POST", "/api/v1/session/password",
                        json={"current_password": "Guess-123456", "new_password": "Cc3-long-enough"}).status_code == 422
    assert p.change("POST", "/api/v1/session/password",
                    json={"current_password": "Guess-123456", "new_password": "Cc3-long-enough"}).status_code == 429
    assert p.get("/api/v1/session").status_code == 401
    assert person().sign_in("opened", PASSWORD).status_code == 429


def test_an_admin_manages_the_accounts_of_their_scope(api, make_account, person, sql):
    make_account("streetboss")
    make_account("otherstreet", prefix="310110013")   # an account this admin's scope does not reach
    admin = person()
    admin.sign_in("streetboss", PASSWORD)

    made = admin.change("POST", "/api/v1/accounts", json={
        "username": "zhaomin", "display_name": "赵敏", "role": "community_worker", "node_prefix": COMMUNITY})
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["must_change_password"] is True and not accounts.password_problems(created["password"])
    assert made.headers["Location"] == f"/api/v1/accounts/{created['id']}"
    assert_problem(admin.change("POST", "/api/v1/accounts", json={
        "username": "zhaomin", "display_name": "另一个赵敏", "role": "community_worker"}), 409, "username")
    for body, field in [({"node_prefix": "310110013001"}, "node_prefix"), ({"role": "department_feed"}, "role"),
                        ({"role": "resident"}, "role"), ({"password": "short"}, "password"),
                        ({"username": "Bad Name"}, "username"), ({"role": "organization_leader"}, "organization_id"),
                        # Admins come from the command line: one who could make another could approve their
                        # own broadcasts under a second name.
                        ({"role": "street_admin"}, "role"), ({"role": "operator"}, "role"),
                        # A leader's organisation is on this register and in scope.
                        ({"role": "organization_leader", "organization_id": 987654}, "organization_id")]:
        assert_problem(admin.change("POST", "/api/v1/accounts", json={
            "username": "newbie", "display_name": "新人", "role": "community_worker", **body}), 422, field)
    assert sql("SELECT count(*) AS n FROM gateway.staff_accounts WHERE username = 'newbie'")[0]["n"] == 0

    listed = {a["username"] for a in admin.get("/api/v1/accounts").json()}
    assert listed == {"streetboss", "zhaomin"}

    # The new worker signs in, must change the password, and works.
    worker = person()
    worker.sign_in("zhaomin", created["password"])
    assert worker.change("POST", "/api/v1/session/password", json={
        "current_password": created["password"], "new_password": "Dd4-long-enough"}).status_code == 204

    # Disabled: their session ends at once, and signing in fails as a wrong password does.
    disabled = admin.change("POST", f"/api/v1/accounts/{created['id']}/disable")
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert worker.get("/api/v1/residents").status_code == 401
    assert person().sign_in("zhaomin", "Dd4-long-enough").status_code == 401
    assert admin.change("POST", f"/api/v1/accounts/{created['id']}/enable").json()["disabled"] is False
    assert person().sign_in("zhaomin", "Dd4-long-enough").status_code == 200

    reset = admin.change("POST", f"/api/v1/accounts/{created['id']}/password", json={})
    assert reset.status_code == 200 and reset.json()["account"]["must_change_password"] is True
    assert person().sign_in("zhaomin", reset.json()["password"]).status_code == 200

    # A peer admin's account is kept on the command line, not taken over from the console.
    make_account("peerboss")
    peer = sql("SELECT account_id FROM gateway.staff_accounts WHERE username = 'peerboss'")[0]["account_id"]
    for action in ("disable", "password"):
        assert_problem(admin.change("POST", f"/api/v1/accounts/{peer}/{action}", json={}), 403, "role")
    assert person().sign_in("peerboss", PASSWORD).status_code == 200
    # Oneself: not disabled or reset by this route (change_password is for that).
    own = sql("SELECT account_id FROM gateway.staff_accounts WHERE username = 'streetboss'")[0]["account_id"]
    assert_problem(admin.change("POST", f"/api/v1/accounts/{own}/disable"), 409, "account_id")
    # Outside the scope answers exactly as an account that does not exist.
    far = sql("SELECT account_id FROM gateway.staff_accounts WHERE username = 'otherstreet'")[0]["account_id"]
    for action in ("disable", "enable", "password"):
        outside = admin.change("POST", f"/api/v1/accounts/{far}/{action}", json={})
        missing = admin.change("POST", f"/api/v1/accounts/987654/{action}", json={})
        assert outside.status_code == missing.status_code == 404
        assert outside.json()["errors"] == missing.json()["errors"]   # neither names the id
    assert sql("SELECT disabled_at FROM gateway.staff_accounts WHERE username = 'otherstreet'")[0]["disabled_at"] is None

    audit = admin.get("/api/v1/accounts/events?limit=3").json()
    assert len(audit["items"]) == 3 and audit["next"] is not None
    assert [(e["event"], e["username"]) for e in audit["items"][:1]] == [("signed_in", "peerboss")]
    everything = [e["event"] for e in admin.get("/api/v1/accounts/events?limit=200").json()["items"]]
    for event in ("created", "password_changed", "disabled", "enabled", "password_reset"):
        assert event in everything
    assert "otherstreet" not in {e["username"] for e in admin.get("/api/v1/accounts/events?limit=200").json()["items"]}


def test_the_cookie_is_secure_behind_a_tls_proxy_the_config_trusts(config, make_account, person, api_with_proxy):
    make_account("tlsuser")
    resp = person().post("/api/v1/session", json={"username": "tlsuser", "password": PASSWORD},
                         headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"})
    assert resp.status_code == 200 and "Secure" in resp.headers["Set-Cookie"]
    rows = api_with_proxy("SELECT address FROM gateway.sign_in_events")
    assert [r["address"] for r in rows] == ["198.51.100.7"]


@pytest.fixture
def api_with_proxy(config, sql, request):
    """The gateway told the tests' own address is a proxy it trusts, then the api fixture."""
    config["TRUSTED_PROXIES"] = "127.0.0.1"
    request.getfixturevalue("api")
    return sql


def test_the_console_is_served_under_console(console_dir, api, web_session):
    page = web_session.get("/console/")
    assert page.status_code == 200 and "<div id=\"app\">" in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-cache" and page.headers["X-Frame-Options"] == "DENY"
    # A page of the console's router (a bookmark, a reload) is the same index.html.
    assert web_session.get("/console/residents/12").text == page.text
    asset = web_session.get("/console/assets/app-abc123.js")
    assert asset.status_code == 200 and "immutable" in asset.headers["Cache-Control"]
    # The build's precompressed copy goes to a browser that takes gzip, as the same script.
    assert asset.headers["Content-Encoding"] == "gzip" and asset.text == "console.log(1)"
    assert asset.headers["Content-Type"].startswith("text/javascript") and asset.headers["Vary"] == "Accept-Encoding"
    plain = web_session.get("/console/assets/app-abc123.js", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.text == "console.log(1)"
    assert web_session.get("/console/assets/missing.js").status_code == 404
    assert web_session.get("/console/../pyproject.toml").status_code == 404
    assert web_session.get("/console/assets/..%2F..%2Findex.html").status_code == 404
    root = web_session.get("/", allow_redirects=False)
    assert root.status_code == 302 and root.headers["Location"].endswith("/console/")


def test_an_unbuilt_console_says_how_to_build_it(empty_console_dir, api, web_session):
    resp = web_session.get("/console/")
    assert resp.status_code == 503 and "make console" in resp.json()["detail"]


@pytest.fixture
def empty_console_dir(config, tmp_path):
    config["CONSOLE_DIR"] = str(tmp_path)


@pytest.fixture
def console_dir(config, tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><div id="app"></div>')
    (tmp_path / "assets" / "app-abc123.js").write_text("console.log(1)")
    (tmp_path / "assets" / "app-abc123.js.gz").write_bytes(gzip.compress(b"console.log(1)"))
    config["CONSOLE_DIR"] = str(tmp_path)
    return tmp_path
