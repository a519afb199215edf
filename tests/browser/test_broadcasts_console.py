"""应急广播, 账号管理 and the civic pages in a real browser.

A street admin composes an emergency broadcast on the page, sees whom it would reach, submits it, and is
neither offered the approval nor granted it when the page's own script asks anyway; a second street admin
approves it on the page, the delivered counts per community appear, and residents reading their inbox
raise the read count on the open page with no reload. A community worker composes one and is never offered
the approval. A street admin creates a worker's account (the generated password shown once), the worker
signs in, must change it first and lands on the workbench; disabled, the sign-in log tells the story. The
civic pages (party members, report rate, an organisation, workers) are looked at with a little data."""
import json

from selenium.webdriver.common.by import By

from services.registry.identity import check_character
from shared import clock
from tests.integration.conftest import wait_for

PASSWORD = "Aa1-long-enough"
STREET, C1, C2, GRID = "310110012", "310110012001", "310110012002", "310110012001001"
N = "/api/v1"


def register(api, seq, name, community):
    first17 = "310110" + "19580423" + f"{seq:03d}"
    resp = api.post(f"{N}/residents", json={
        "name": name, "id_number": first17 + check_character(first17), "community_code": community,
        "residence_type": "registered", "building": "7号", "unit": "1单元", "room": f"{100 + seq}",
        "relation": "self"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def pick(console, select_css, option_text):
    """Choose an option of an Element Plus select as a person would: open it, click the option."""
    box = console.find(select_css).find_element(By.XPATH, "ancestor::div[contains(@class, 'el-select')][1]")
    console.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    box.click()
    want = option_text.strip()      # a community's option is indented with an ideographic space
    console.click_text(want, "li.el-select-dropdown__item")
    console.wait(lambda d: want in d.execute_script("return arguments[0].closest('.el-select').innerText", box), 5,
                 f"{option_text} chosen")
    console.wait(lambda d: not any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, ".el-select-dropdown")),
                 5, "the options closed")


def csrf(console):
    return json.loads(console.fetch("GET", "/api/v1/session")["body"])["csrf_token"]


def rollup_row(console, name):
    """The text of the roll-up row of one community (or 合计) on a broadcast's page."""
    for el in console.finds(".group .row"):
        if el.find_element(By.CSS_SELECTOR, ".name").text.startswith(name):
            return el.text
    return ""


def compose(console, area, title, message):
    console.open("broadcasts/new")
    console.text_appears("发起应急广播")
    pick(console, "#bc-new-area", area)
    console.type("#bc-new-title", title)
    console.type("#bc-new-message", message)
    for channel in ("微信", "短信"):    # the in-app inbox only: it needs no provider
        console.click_text(channel, "label.el-checkbox")
    console.wait(lambda d: [el.text for el in d.find_elements(By.CSS_SELECTOR, "label.el-checkbox.is-checked")]
                 == ["站内消息"], 5, "only the inbox ticked")


def test_a_broadcast_needs_a_second_admin_and_its_counts_rise_while_open(console, api, sql, make_account):
    people = {C1: [register(api, s, n, C1) for s, n in [(1, "王秀英"), (2, "李建华"), (3, "赵玉梅")]],
              C2: [register(api, s, n, C2) for s, n in [(4, "孙志刚"), (5, "周桂芳")]]}
    wait_for(lambda: sql("SELECT count(*) AS n FROM notification.subscribers WHERE status = 'active'")[0]["n"] == 5,
             message="five subscribers")
    make_account("zhangmin", "street_admin", STREET, name="张敏")
    make_account("liming", "street_admin", STREET, name="李明")

    # A composes, and sees the reach per community before anything is sent.
    console.sign_in("zhangmin", PASSWORD)
    compose(console, "长海路街道（310110012）", "台风“梅花”防御紧急通知", "台风“梅花”预计今晚登陆，请关好门窗，非必要不外出。")
    console.text_appears("共 5 位居民")
    reach = {row.find_element(By.CSS_SELECTOR, "th").text: row.find_element(By.CSS_SELECTOR, "td").text
             for row in console.finds(".reach tbody tr")}
    assert reach == {f"长海一村居委会（{C1}）": "3", f"长海二村居委会（{C2}）": "2"}, reach
    console.assert_accessible("broadcast new")
    console.d.execute_script("window.scrollTo(0, 0)")
    console.settle()
    console.screenshot("broadcast-new")
    console.click_text("保存并提交审批")
    console.wait(lambda d: "/broadcasts/" in d.current_url and d.current_url.rstrip("/").split("/")[-1].isdigit(),
                 15, "the broadcast's page")
    bid = int(console.d.current_url.rstrip("/").split("/")[-1])
    console.text_appears("待审批")
    console.text_appears("这条广播由您起草或修改，须由另一位街道管理员审批。")
    assert console.text_absent("批准并发送") and console.text_absent("驳回")
    console.assert_accessible("broadcast detail, own")
    row = sql("SELECT status, prefix, channels, created_by FROM notification.broadcasts WHERE id = %s", (bid,))[0]
    assert (row["status"], row["prefix"], list(row["channels"])) == ("pending_approval", STREET, ["inbox"])
    assert row["created_by"].startswith("account:zhangmin:")

    # A forces the approval from the page's own script: the API refuses it too.
    forced = console.fetch("POST", f"{N}/broadcasts/{bid}/approve", None, {"X-CSRF-Token": csrf(console)})
    assert forced["status"] == 403, forced
    assert sql("SELECT status FROM notification.broadcasts WHERE id = %s", (bid,))[0]["status"] == "pending_approval"
    assert sql("SELECT count(*) AS n FROM notification.deliveries")[0]["n"] == 0

    # B approves on the page; the delivered counts per community appear.
    console.sign_out()
    console.sign_in("liming", PASSWORD)
    console.open(f"broadcasts/{bid}")
    console.text_appears("台风“梅花”防御紧急通知")
    assert console.text_absent("须由另一位街道管理员审批")
    console.click_text("批准并发送")
    console.text_appears("批准后将立即发送给范围内全部居民")
    console.assert_accessible("broadcast approve confirm")
    console.click_text("批准并发送", ".el-message-box button")
    console.wait(lambda d: "送达 3/3" in rollup_row(console, "长海一村居委会")
                 and "送达 2/2" in rollup_row(console, "长海二村居委会")
                 and "送达 5/5" in rollup_row(console, "合计"), 30, "every delivery counted on the page")
    assert "已读 0/3" in rollup_row(console, "长海一村居委会")
    console.text_appears("已发送", 30)
    console.text_appears("李明（liming）")          # the approver
    console.assert_accessible("broadcast detail, sent")
    bc = sql("SELECT status, approved_by FROM notification.broadcasts WHERE id = %s", (bid,))[0]
    assert bc["approved_by"].startswith("account:liming:") and bc["status"] == "sent"
    counts = sql("SELECT community_code, channel, status, count(*) AS n FROM notification.deliveries "
                 "GROUP BY 1, 2, 3 ORDER BY 1")
    assert [(r["community_code"], r["channel"], r["status"], r["n"]) for r in counts] == [
        (C1, "inbox", "delivered", 3), (C2, "inbox", "delivered", 2)]

    # Two residents of the first community and one of the second read it; the open page follows (no reload).
    console.d.execute_script("window.__bt3_same_page = true")
    for rid in people[C1][:2] + people[C2][:1]:
        inbox = api.get(f"{N}/subscribers/{rid}/inbox").json()
        assert [(i["category"], i["status"]) for i in inbox["items"]] == [("emergency", "delivered")], inbox
        assert "请关好门窗" in inbox["items"][0]["body"], inbox
        assert api.post(f"{N}/subscribers/{rid}/inbox/{inbox['items'][0]['id']}/read").status_code == 200
    console.wait(lambda d: "已读 2/3" in rollup_row(console, "长海一村居委会")
                 and "已读 1/2" in rollup_row(console, "长海二村居委会")
                 and "已读 3/5" in rollup_row(console, "合计"), 20, "the read counts to rise (5 s refresh)")
    assert console.d.execute_script("return window.__bt3_same_page === true"), "the page was reloaded"
    assert sql("SELECT count(*) AS n FROM notification.deliveries WHERE status = 'read'")[0]["n"] == 3
    console.assert_accessible("broadcast detail, read")
    console.d.execute_script("document.getElementById('bc-msg').scrollIntoView({block: 'start'})")
    console.settle()
    console.screenshot("broadcast-detail")


def test_a_community_worker_composes_a_broadcast_and_is_never_offered_the_approval(console, api, sql, make_account):
    register(api, 6, "吴淑珍", C1)
    wait_for(lambda: sql("SELECT count(*) AS n FROM notification.subscribers")[0]["n"] == 1, message="a subscriber")
    make_account("wangli", "community_worker", C1, name="王丽")
    console.sign_in("wangli", PASSWORD)
    compose(console, "长海一村居委会（310110012001）", "停水紧急通知", "因管道抢修，今日14时起停水，请提前储水。")
    console.text_appears("共 1 位居民")
    console.assert_accessible("broadcast new, worker")
    console.click_text("保存并提交审批")
    console.wait(lambda d: d.current_url.rstrip("/").split("/")[-1].isdigit(), 15, "the broadcast's page")
    bid = int(console.d.current_url.rstrip("/").split("/")[-1])
    console.text_appears("待审批")
    console.text_appears("停水紧急通知")
    assert console.text_absent("批准并发送") and console.text_absent("驳回")
    assert console.text_absent("须由另一位街道管理员审批")    # not "yours to wait on": not the worker's to judge at all
    console.assert_accessible("broadcast detail, worker")
    forced = console.fetch("POST", f"{N}/broadcasts/{bid}/approve", None, {"X-CSRF-Token": csrf(console)})
    assert forced["status"] == 403, forced
    row = sql("SELECT status, prefix, created_by FROM notification.broadcasts WHERE id = %s", (bid,))[0]
    assert (row["status"], row["prefix"]) == ("pending_approval", C1)
    assert row["created_by"].startswith("account:wangli:")
    assert sql("SELECT count(*) AS n FROM notification.deliveries")[0]["n"] == 0


def account_row(console, username):
    for tr in console.finds(".el-table__body tr.el-table__row"):
        cells = tr.find_elements(By.CSS_SELECTOR, "td")
        if cells and cells[0].text.strip() == username:
            return tr
    return None


def test_the_street_admin_creates_and_disables_an_account(console, api, sql, make_account, person):
    make_account("zhangmin", "street_admin", STREET, name="张敏")
    console.sign_in("zhangmin", PASSWORD)
    console.open("admin/accounts")
    console.text_appears("账号管理")
    console.wait(lambda d: account_row(console, "zhangmin"), 15, "the admin's own row")
    console.assert_accessible("accounts")

    console.click_text("新建账号")
    console.type("#acc-username", "chenjing")
    console.type("#acc-name", "陈静")
    pick(console, "#acc-scope", "长海一村居委会（310110012001）")
    console.assert_accessible("accounts, create dialog")
    console.click_text("新建", ".el-dialog__footer button")
    console.text_appears("请记下密码")
    shown = console.find("#pw-once").get_attribute("value")
    assert len(shown) >= 10
    console.text_appears("这个密码只显示这一次")
    console.assert_accessible("accounts, password once")
    acc = sql("SELECT role, node_prefix, must_change_password, disabled_at FROM gateway.staff_accounts "
              "WHERE username = 'chenjing'")[0]
    assert (acc["role"], acc["node_prefix"], acc["must_change_password"], acc["disabled_at"]) == (
        "community_worker", C1, True, None)
    assert shown not in json.dumps(api.get(f"{N}/accounts").json(), ensure_ascii=False)   # never shown again
    console.click_text("关闭", ".el-dialog__footer button")
    console.wait(lambda d: not any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, "#pw-once")), 5,
                 "the password dialog closed")
    row = console.wait(lambda d: account_row(console, "chenjing"), 10, "the new account listed")
    assert "陈静" in row.text and "社区工作者" in row.text and "待修改密码" in row.text
    console.settle()
    console.screenshot("accounts")

    # The new worker signs in with it, must change it first, and lands on the workbench.
    console.sign_out()
    console.sign_in("chenjing", shown, landing_css="#pw-current")
    console.text_appears("首次登录或密码被重置后，请先设置新密码。")
    console.assert_accessible("password")
    console.type("#pw-current", shown)
    console.type("#pw-new", "Qz7-harbour-lantern")
    console.type("#pw-again", "Qz7-harbour-lantern")
    console.click_text("保存", "form button[type=submit]")
    console.text_appears("工作台")
    console.text_appears("陈静")
    console.wait(lambda d: d.current_url.rstrip("/").endswith("/console"), 10, "the workbench")
    assert sql("SELECT must_change_password FROM gateway.staff_accounts WHERE username = 'chenjing'")[0][
        "must_change_password"] is False

    # Back as the admin: disable it.
    console.sign_out()
    console.sign_in("zhangmin", PASSWORD)
    console.open("admin/accounts")
    row = console.wait(lambda d: account_row(console, "chenjing"), 15, "the worker's row")
    assert "待修改密码" not in row.text
    button = [b for b in row.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "停用"][0]
    button.click()
    console.text_appears("停用后 陈静 将无法登录")
    console.click_text("确定", ".el-message-box button")
    console.wait(lambda d: "已停用" in (account_row(console, "chenjing").text or ""), 10, "the row disabled")
    assert sql("SELECT disabled_at FROM gateway.staff_accounts WHERE username = 'chenjing'")[0]["disabled_at"]
    assert person().sign_in("chenjing", "Qz7-harbour-lantern").status_code != 200

    # The sign-in log tells it, newest first.
    console.click_text("登录记录")
    console.text_appears("登录记录")

    def events(d):
        got = []
        for tr in d.find_elements(By.CSS_SELECTOR, ".el-table__body tr.el-table__row"):
            cells = [c.text.strip() for c in tr.find_elements(By.CSS_SELECTOR, "td")]
            if len(cells) >= 3 and cells[2] == "chenjing":
                got.append(cells[1])
        return got
    console.wait(lambda d: "停用账号" in events(d), 15, "the disable in the log")
    seen = events(console.d)
    for word in ("创建账号", "登录成功", "修改密码", "停用账号", "已停用账号尝试登录"):
        assert word in seen, seen
    assert seen.index("停用账号") < seen.index("修改密码") < seen.index("登录成功") < seen.index("创建账号")
    logged = [r["event"] for r in sql("SELECT event FROM gateway.sign_in_events WHERE username = 'chenjing' "
                                      "ORDER BY event_id")]
    assert logged[:4] == ["created", "signed_in", "password_changed", "disabled"], logged
    console.assert_accessible("sign-ins")
    console.settle()
    console.screenshot("sign-ins")


def test_the_civic_pages_look_right(console, api, make_account):
    rids = [register(api, 10 + i, n, C1 if i < 4 else C2)
            for i, n in enumerate(["陈志强", "刘秀兰", "李桂英", "张建国", "杨帆", "黄丽娟"])]
    today = clock.today().isoformat()
    for rid in rids[:3] + rids[4:6]:
        made = api.post(f"{N}/party-members", json={"resident_id": rid, "category": "on_the_job",
                                                      "membership_org": "上海电气集团党委", "joined_party": "1996-07-01"})
        assert made.status_code == 201, made.text
    for rid in (rids[0], rids[1], rids[4]):
        reported = api.post(f"{N}/party-members/{rid}/report", json={"reported_on": today, "posts": ["security_patrol"]})
        assert reported.status_code == 200, reported.text
    org = api.post(f"{N}/organizations", json={
        "name": "长海一村平安巡逻队", "category": "volunteer_team", "subcategory": "security_patrol",
        "community_code": C1, "leader_resident_id": rids[0], "activities": ["public_safety", "civility"],
        "founded_on": "2019-05-04", "filing_no": "CHL-2019-017", "status": "active"})
    assert org.status_code == 201, org.text
    oid = org.json()["id"]
    assert api.post(f"{N}/organizations/{oid}/members", json={"resident_id": rids[3], "role": "deputy"}).status_code == 201
    assert api.post(f"{N}/organizations/{oid}/projects", json={
        "name": "夜间平安巡逻", "funder": "长海路街道办事处", "budget": "86000.50",
        "starts_on": "2025-01-01", "ends_on": "2025-12-31"}).status_code == 201
    for seq, (name, role, community, grid) in enumerate([("陈志明", "grid_worker", C1, GRID),
                                                         ("周敏", "director", C1, None),
                                                         ("吴海燕", "secretary", C2, None)]):
        first17 = "310110" + "19850612" + f"{200 + seq:03d}"
        body = {"name": name, "id_number": first17 + check_character(first17), "phone": f"1391627{5300 + seq}",
                "role": role, "community_code": community, "origin": "recruited", "started_on": "2022-03-01"}
        if grid:
            body["grid_code"] = grid
        appointed = api.post(f"{N}/workers", json=body)
        assert appointed.status_code == 201, appointed.text

    make_account("zhangmin", "street_admin", STREET, name="张敏")
    console.sign_in("zhangmin", PASSWORD)

    console.open("party")
    console.text_appears("党员报到")
    console.text_appears("刘秀兰")
    console.text_appears("黄丽娟")
    console.assert_accessible("party")
    console.settle()
    console.screenshot("party")

    console.open("party/report-rate")
    console.text_appears("报到率")
    console.find("canvas")
    console.text_appears("长海一村居委会")
    console.assert_accessible("party report rate")
    console.settle(1.0)     # the chart animates in
    console.screenshot("party-report-rate")

    console.open(f"organizations/{oid}")
    console.text_appears("长海一村平安巡逻队")
    console.text_appears("成员（2）")
    console.text_appears("承接项目（1）")
    console.text_appears("张建国")
    console.assert_accessible("organization")
    console.settle()
    console.screenshot("organization")

    console.open("workers")
    console.text_appears("陈志明")
    console.text_appears("吴海燕")
    console.assert_accessible("workers")
    console.settle()
    console.screenshot("workers")
