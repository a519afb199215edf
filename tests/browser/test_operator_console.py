"""The operator's view of the console in a real browser: the instance's health (every service's outbox, the
signing key's fingerprint as the aggregator holds it, the summary in plain words), and the API tokens page —
a street admin revokes a community worker's token (its row then says 已撤销 and the token gets 401), and is
offered no revoke button on an operator's token, which only an operator may revoke."""
from selenium.webdriver.common.by import By

from shared import facts, instance
from shared.migrations import services_with_migrations
from tests.integration.test_residents_api import COMMUNITY

PASSWORD = "Aa1-long-enough"


def token_id(token):
    """The 8 hex digits after lnl_ (what the tokens page shows and names its rows by)."""
    return token.split("_")[1]


def services_with_outbox(sql):
    """The services this code ships that have an outbox in the test database (a schema another test made for
    its own probe service is not one of the instance's services, and the page does not list it)."""
    rows = sql("SELECT table_schema AS service FROM information_schema.tables WHERE table_name = 'outbox' "
               "AND table_schema <> 'public'")
    return sorted({r["service"] for r in rows} & set(services_with_migrations()))


# --- 1. 实例运行状态 -------------------------------------------------------------------------------------

def test_the_instance_page_shows_every_outbox_and_the_aggregators_key_fingerprint(console, make_account, config, sql):
    make_account("admin1", "street_admin", name="街道管理员")
    console.sign_in("admin1", PASSWORD)
    console.open("operator/instance")

    # The key this instance signs its fact batches with, as its parent would show it for this instance (the
    # aggregator holds it; on a busy machine its first answer may come late, and the page asks every 10 s).
    expected = instance.fingerprint(facts.Signer.from_config(config).public_key)
    assert expected
    console.wait(lambda d: d.find_element(By.CSS_SELECTOR, '[data-test="fingerprint"]').text.strip() == expected, 30,
                 "the signing key's fingerprint")

    summary = console.find('[data-test="instance-summary"]')
    # A fresh instance with nothing stuck, no dead letters and no links to miss: all well, said in words.
    assert summary.get_attribute("data-healthy") == "true", summary.text
    assert "一切正常" in summary.text

    services = services_with_outbox(sql)
    assert services, "no service has an outbox in the test database"
    for service in services:
        row = console.find(f'[data-test="outbox-{service}"]')
        assert service in row.text
    shown = sorted(el.get_attribute("data-test").removeprefix("outbox-")
                   for el in console.finds('[data-test^="outbox-"]'))
    assert shown == services

    # No children on a fresh street, and how they are added is said.
    console.text_appears("没有登记下级实例")
    console.text_appears("linli child add")
    console.text_appears("没有死信")
    console.assert_accessible("operator instance")
    console.settle()
    console.screenshot("operator-instance")


# --- 2. API 令牌 --------------------------------------------------------------------------------------------

def test_a_street_admin_revokes_a_workers_token_and_is_not_offered_an_operators(console, make_account, make_token, api):
    make_account("admin1", "street_admin", name="街道管理员")
    worker = make_token("community_worker", prefix=COMMUNITY, name="王丽的手机")
    operator = make_token("operator", name="运维巡检脚本")
    assert api.as_(worker).get("/api/v1/nodes").status_code == 200

    console.sign_in("admin1", PASSWORD)
    console.open("operator/tokens")
    wid, oid = token_id(worker), token_id(operator)
    row = console.find(f'[data-test="token-{wid}"]')
    assert row.get_attribute("data-state") == "active"
    assert "王丽的手机" in row.text and "社区工作者" in row.text

    # An operator's token is an operator's to revoke: no button, and the row says who may.
    op_row = console.find(f'[data-test="token-{oid}"]')
    assert "运维人员" in op_row.text
    assert console.finds(f'[data-test="revoke-{oid}"]') == []
    assert "由运维人员撤销" in op_row.text
    console.assert_accessible("tokens")

    # Revoke the worker's, after a confirmation that names the token.
    button = console.find(f'[data-test="revoke-{wid}"]')
    console.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    box = console.find(".el-message-box")
    assert "王丽的手机" in box.text and wid in box.text
    console.assert_accessible("tokens, confirming")
    console.click_text("撤销", ".el-message-box__btns button")

    console.wait(lambda d: d.find_element(By.CSS_SELECTOR, f'[data-test="token-{wid}"]').get_attribute("data-state")
                 == "revoked", message="the token's row to say revoked")
    assert "已撤销" in console.find(f'[data-test="token-{wid}"]').text
    assert console.finds(f'[data-test="revoke-{wid}"]') == []
    # Revoked at once: the worker's token is refused from now on; the operator's still works.
    assert api.as_(worker).get("/api/v1/nodes").status_code == 401
    assert api.as_(operator).get("/api/v1/nodes").status_code == 200
    # The filter shows the revoked one alone.
    console.click_text("已撤销（1）", "label.el-radio-button, .el-radio-button")
    console.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, '[data-test^="token-"]')) == 1,
                 message="only the revoked token listed")
    console.find(f'[data-test="token-{wid}"]')
    console.assert_accessible("tokens, revoked")
