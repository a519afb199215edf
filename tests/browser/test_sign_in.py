"""Signing in to the console in a real browser: the sign-in page, a wrong password, a lock-out, the
worker's landing page, what a community worker is not offered, and CSRF from the page's own scripts."""
from tests.integration.test_residents_api import COMMUNITY

PASSWORD = "Aa1-long-enough"


def test_sign_in_wrong_password_and_lock_out(console, make_account):
    make_account("wangli", "community_worker", COMMUNITY, name="王丽")
    console.open("")
    console.find("#signin-username")           # signed out: sent to sign in
    assert "登录" in console.d.title or console.text_absent("Sign in")
    console.assert_accessible("sign-in")
    console.screenshot("signin")

    console.sign_in("wangli", "Wrong-password-1", landing_css=None)
    console.text_appears("用户名或密码不正确")
    for _ in range(3):
        console.sign_in("wangli", "Wrong-password-1", landing_css=None)
    console.sign_in("wangli", "Wrong-password-1", landing_css=None)
    console.text_appears("账号已暂时锁定")
    console.text_appears("15 分钟")
    console.assert_accessible("sign-in, locked")
    # Locked: even the right password is refused, and the page says so rather than signing in.
    console.sign_in("wangli", PASSWORD, landing_css=None)
    console.text_appears("账号已暂时锁定")
    assert console.finds(".shell") == []


def test_a_worker_lands_on_the_workbench_and_is_offered_nothing_of_an_admin(console, make_account):
    make_account("wangli", "community_worker", COMMUNITY, name="王丽")
    console.sign_in("wangli", PASSWORD)
    console.text_appears("工作台")
    console.text_appears("王丽")
    assert console.text_absent("账号管理")     # the admin's menu is not offered
    console.open("admin/accounts")
    console.text_appears("没有权限")
    console.assert_accessible("forbidden")


def test_a_change_without_the_csrf_token_is_refused_from_the_page(console, make_account, sql):
    make_account("admin1")
    console.sign_in("admin1", PASSWORD)
    before = sql("SELECT count(*) AS n FROM registry.residents")[0]["n"]
    refused = console.fetch("POST", "/api/v1/residents", {"name": "王秀英"})
    assert refused["status"] == 403 and "X-CSRF-Token" in refused["body"]
    assert sql("SELECT count(*) AS n FROM registry.residents")[0]["n"] == before
    session = console.fetch("GET", "/api/v1/session")
    import json
    token = json.loads(session["body"])["csrf_token"]
    with_token = console.fetch("POST", "/api/v1/residents", {"name": "王秀英"}, {"X-CSRF-Token": token})
    assert with_token["status"] == 422      # past the CSRF check, refused on its fields


def test_a_worker_on_a_phone_signs_in_and_finds_the_residents(console, make_account, api):
    from tests.integration.test_residents_api import resident
    assert api.post("/api/v1/residents", json=resident()).status_code == 201
    make_account("wangli", "community_worker", COMMUNITY, name="王丽")
    console.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                              {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    console.sign_in("wangli", PASSWORD)
    console.text_appears("工作台")
    assert console.finds(".aside") == [] or not console.finds(".aside")[0].is_displayed()   # the menu is folded
    console.assert_accessible("workbench on a phone")
    console.screenshot("phone-workbench")
    console.click_text("☰", ".menu-button")
    console.click_text("居民查询", ".drawer-nav a")
    console.text_appears("王秀英")
    # Nothing wider than the phone but what scrolls inside its own box (a table).
    assert console.d.execute_script("return document.documentElement.scrollWidth") <= 390
    console.assert_accessible("residents on a phone")
