"""The people pages of the console in a real browser: registering a resident (a refused ID number shown
beside its field, then the record), importing a GB18030 CSV with a bad row, what a community worker may
and may not see next to a street admin, and the street admin's workbench with work waiting on it."""
import re
from datetime import timedelta

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from shared import clock
from tests.integration.conftest import wait_for
from tests.integration.test_residents_api import COMMUNITY, OTHER_COMMUNITY, id_number

PASSWORD = "Aa1-long-enough"


def count(sql, where="", params=None):
    return sql(f"SELECT count(*) AS n FROM registry.residents {where}", params)[0]["n"]


def wrong_check(number):
    """The same ID number with its check character replaced by another."""
    return number[:-1] + ("0" if number[-1] != "0" else "1")


def register(api, name, community, seq, room="101"):
    body = {"name": name, "id_number": id_number(birth="19620805", seq=seq), "community_code": community,
            "residence_type": "registered", "building": "3号", "unit": "1单元", "room": room, "relation": "self"}
    resp = api.post("/api/v1/residents", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def choose(console, select_css, label):
    """Pick `label` in an Element Plus select, by clicking it open and clicking the option."""
    console.d.find_element(By.CSS_SELECTOR, select_css).find_element(
        By.XPATH, "ancestor::div[contains(@class, 'el-select__wrapper')][1]").click()
    console.click_text(label, ".el-select-dropdown__item")
    console.wait(lambda d: not [e for e in d.find_elements(By.CSS_SELECTOR, ".el-select-dropdown__item")
                                if e.is_displayed()], message="the options to close")


def menu_texts(console):
    return [a.text.strip() for a in console.finds(".aside nav a")]


# --- 1. 居民登记 -------------------------------------------------------------------------------------------

def test_a_bad_id_number_is_refused_beside_its_field_then_a_good_one_registers(console, make_account, sql):
    make_account("wangli", "community_worker", COMMUNITY, name="王丽")
    console.sign_in("wangli", PASSWORD)
    console.open("residents/new")
    console.type("#rn-name", "沈桂芳")
    good = id_number(birth="19490622", seq="246")
    console.type("#rn-id", wrong_check(good))
    console.type("#rn-phone", "13816205731")
    console.type("#rn-building", "7号")
    console.type("#rn-unit", "3单元")
    console.type("#rn-room", "401")
    choose(console, "#rn-relation", "本人（户主）")
    # The worker's community is already chosen for them.
    item = console.find("#rn-community").find_element(By.XPATH, "ancestor::div[contains(@class, 'el-form-item')][1]")
    console.wait(lambda d: f"（{COMMUNITY}）" in item.text, message="the worker's community chosen")
    console.find("form button[type=submit]").click()

    error = console.field_error("#rn-id")
    assert f"should be {good[-1]}" in error, error          # the API's own words, beside the field
    assert count(sql) == 0                                   # nothing written
    assert console.d.switch_to.active_element.get_attribute("id") == "rn-id"   # the eye is taken to it
    console.assert_accessible("resident-new, refused")
    console.settle()
    console.screenshot("resident-new")

    # Correct the last character, as a person would, and send again.
    field = console.find("#rn-id")
    field.send_keys(Keys.END, Keys.BACKSPACE, good[-1])
    console.find("form button[type=submit]").click()
    console.wait(lambda d: re.search(r"/console/residents/\d+$", d.current_url), message="the new record's page")
    console.text_appears("本次查看已记录审计日志")
    console.text_appears(good)                               # the record in full (and so audited)
    console.text_appears("沈桂芳")
    assert console.finds("#rn-id") == []
    console.assert_accessible("resident record")

    rid = int(console.d.current_url.rsplit("/", 1)[1])
    row = sql("SELECT name, community_code, status FROM registry.residents WHERE id = %s", (rid,))
    assert row == [{"name": "沈桂芳", "community_code": COMMUNITY, "status": "active"}]
    assert count(sql) == 1


# --- 2. 批量导入 -------------------------------------------------------------------------------------------

HEADERS = ["姓名", "公民身份号码", "联系电话", "社区代码", "楼号", "单元", "室号", "与户主关系", "居住类型", "标签"]


def csv_file(tmp_path, name, rows):
    path = tmp_path / name
    lines = [",".join(HEADERS)] + [",".join(r) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    return path


def row(name, number, room, tags=""):
    return [name, number, "", COMMUNITY, "5号", "2单元", room, "本人", "户籍", tags]


def choose_file(console, path):
    # The real <input type=file> is visually hidden behind its label; a person's choice reaches it the same way.
    console.d.find_element(By.CSS_SELECTOR, "#im-file").send_keys(str(path))
    console.text_appears(path.name)
    console.text_appears("GB18030")                          # the page recognised the encoding


def start_watching_progress(console):
    """Note whether the progress block is ever shown (it may be gone by the time anyone polls for it)."""
    console.d.execute_script(
        """window.__sawProgress = false;
           const seen = () => { if (document.querySelector('.progress[role=status]')) window.__sawProgress = true };
           window.__progressWatch = new MutationObserver(seen);
           window.__progressWatch.observe(document.body, {childList: true, subtree: true});""")


def saw_progress(console):
    return console.d.execute_script("window.__progressWatch.disconnect(); return window.__sawProgress")


def test_a_gb18030_csv_with_one_bad_row_imports_the_good_rows(console, make_account, sql, tmp_path):
    make_account("wangli", "community_worker", COMMUNITY, name="王丽")
    names = ["欧阳秀兰", "诸葛明", "陆𠮷祥"]                 # 𠮷 is outside GBK: four bytes in GB18030
    good = [row(n, id_number(birth="19580101", seq=f"{31 + i}2"), f"{601 + i}", "独居老人" if i == 0 else "")
            for i, n in enumerate(names)]
    bad_number = wrong_check(id_number(birth="19580101", seq="392"))
    bad = row("钱坏行", bad_number, "699")
    path = csv_file(tmp_path, "居民名单.csv", [good[0], good[1], bad, good[2]])   # the bad row is row 4

    console.sign_in("wangli", PASSWORD)
    console.open("imports")
    console.click_text("只导入正确的行（出错的行列在报告里）", "label.el-radio")
    choose_file(console, path)
    console.assert_accessible("imports, file chosen")
    start_watching_progress(console)
    console.click_text("开始导入", "form button[type=submit]")

    result = console.find("section.result", timeout=30)
    assert saw_progress(console), "the upload's progress was never shown"
    console.text_appears("已写入 3 条，1 行未通过校验未导入。")
    stats = [s.text.split("\n") for s in result.find_elements(By.CSS_SELECTOR, ".stat")]
    assert stats == [["4", "数据行数"], ["3", "校验通过"], ["1", "未通过"], ["3", "已写入"]]
    assert "gb18030" in result.text.lower()
    table = result.find_element(By.CSS_SELECTOR, ".el-table")
    lines = [r.text for r in table.find_elements(By.CSS_SELECTOR, ".el-table__body tr")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("4") and "公民身份号码" in lines[0] and "should be" in lines[0], lines[0]
    console.assert_accessible("import result")
    console.d.execute_script("arguments[0].scrollIntoView({block: 'end'})", table)   # the report in the picture
    console.settle()
    console.screenshot("import-result")

    stored = sql("SELECT name, community_code FROM registry.residents ORDER BY name")
    assert sorted(r["name"] for r in stored) == sorted(names)
    assert {r["community_code"] for r in stored} == {COMMUNITY}
    assert count(sql, "WHERE name = %s", ("钱坏行",)) == 0

    # All or nothing: the same kind of file with one bad row writes nothing at all.
    more = [row("孙立新", id_number(birth="19600202", seq="412"), "701"), row("钱又错", wrong_check(
        id_number(birth="19600202", seq="432")), "702")]
    console.click_text("全部正确才导入（有一行出错则都不写入）", "label.el-radio")
    choose_file(console, csv_file(tmp_path, "第二批.csv", more))
    console.click_text("开始导入", "form button[type=submit]")
    console.text_appears("本次没有写入任何数据", timeout=30)
    stats = [s.text.split("\n")[0] for s in console.finds("section.result .stat")]
    assert stats == ["2", "1", "1", "0"]
    assert count(sql) == 3 and count(sql, "WHERE name = %s", ("孙立新",)) == 0


# --- 3. 一个社区的工作者看不到别的社区，也做不了街道管理员的事 ---------------------------------------------------

def test_a_community_worker_sees_neither_another_community_nor_a_street_admins_actions(console, api, make_account):
    register(api, "周本社", COMMUNITY, "512", room="201")
    theirs = register(api, "吴隔壁", OTHER_COMMUNITY, "532", room="202")
    appointed = api.post("/api/v1/workers", json={
        "name": "陈志明", "id_number": id_number(birth="19850412", seq="551"), "role": "grid_worker",
        "community_code": COMMUNITY, "grid_code": COMMUNITY + "001", "origin": "recruited",
        "started_on": "2022-03-01"})
    assert appointed.status_code == 201, appointed.text
    make_account("wangli", "community_worker", COMMUNITY, name="王丽")
    make_account("admin1", "street_admin", name="街道管理员")

    console.sign_in("wangli", PASSWORD)
    console.open("residents")
    console.text_appears("周本社")
    assert console.text_absent("吴隔壁")
    names = [a.text for a in console.finds(".el-table__body a[href*='/residents/']")]
    assert names == ["周本社"], names
    console.assert_accessible("residents, worker")
    console.settle()
    console.screenshot("residents")

    console.open(f"residents/{theirs}")
    console.text_appears("找不到该记录")
    assert console.text_absent("吴隔壁") and console.text_absent("本次查看已记录审计日志")
    console.assert_accessible("resident, not found")

    menu = menu_texts(console)
    assert "居民查询" in menu and "社区工作者" in menu
    assert "账号管理" not in menu and "登录记录" not in menu
    console.open("workers")
    console.text_appears("陈志明")                            # the list is there to read...
    assert console.text_absent("任用社区工作者")              # ...but appointing is the street's
    console.assert_accessible("workers, worker")
    console.open("admin/accounts")
    console.text_appears("没有权限")
    console.assert_accessible("forbidden")

    # The street admin is offered each of them: the checks above could fail.
    console.sign_out()
    console.sign_in("admin1", PASSWORD)
    console.open("residents")
    console.text_appears("周本社")
    console.text_appears("吴隔壁")
    assert "账号管理" in menu_texts(console)
    console.open(f"residents/{theirs}")
    console.text_appears("本次查看已记录审计日志")
    console.text_appears("吴隔壁")
    console.open("workers")
    console.text_appears("陈志明")
    console.click_text("任用社区工作者")
    console.find(".el-dialog")                               # the appointing form opens
    console.open("admin/accounts")
    console.text_appears("wangli")
    assert console.text_absent("没有权限")


# --- 4. 街道管理员的工作台 ------------------------------------------------------------------------------------

def test_the_street_admins_workbench_lists_the_work_waiting(console, api, make_account, sql):
    raiser = register(api, "陈志强", COMMUNITY, "612", room="301")
    reported = register(api, "刘建国", COMMUNITY, "632", room="302")
    unreported = register(api, "赵红梅", OTHER_COMMUNITY, "642", room="303")
    matter = api.post("/api/v1/matters", json={
        "community_code": COMMUNITY, "category": "parking", "channel": "reception_day", "building": "8号楼",
        "title": "小区夜间停车难", "description": "晚上8点后小区内车辆乱停，消防通道被占，希望重新规划停车位。",
        "raiser_resident_id": raiser})
    assert matter.status_code == 201, matter.text
    for rid in (reported, unreported):
        resp = api.post("/api/v1/party-members", json={"resident_id": rid, "category": "on_the_job",
                                                       "membership_org": "上海电气集团党委", "joined_party": "1996-07-01"})
        assert resp.status_code == 201, resp.text
    resp = api.post(f"/api/v1/party-members/{reported}/report",
                    json={"reported_on": clock.today().isoformat(), "posts": ["security_patrol"]})
    assert resp.status_code == 200, resp.text
    resp = api.post("/api/v1/points/categories", json={
        "code": "security_patrol", "name": "平安巡逻", "unit": "hour", "points_per_unit": 10, "daily_cap": 40,
        "verifier_roles": ["community_worker"]})
    assert resp.status_code == 201, resp.text
    wait_for(lambda: sql("SELECT 1 FROM points.accounts WHERE resident_id = %s", (reported,)),
             message="the report to open a points account")
    now = clock.now()
    served_at = max(now - timedelta(minutes=1), now.replace(hour=0, minute=0, second=0, microsecond=0))
    record = api.post("/api/v1/points/records", json={
        "resident_id": reported, "category_code": "security_patrol", "hours": "2",
        "served_at": served_at.isoformat(), "description": "晚间小区巡逻，劝导电动车不进楼道"})
    assert record.status_code == 201, record.text

    make_account("admin1", "street_admin", name="李建华")
    console.sign_in("admin1", PASSWORD)
    console.text_appears("李建华，您好")
    matters = console.find("section[aria-labelledby=wb-matters]")
    console.wait(lambda d: "小区夜间停车难" in matters.text, message="the matter on the workbench")
    records = console.find("section[aria-labelledby=wb-records]")
    console.wait(lambda d: "刘建国：晚间小区巡逻" in records.text, message="the pending record")
    assert records.find_element(By.CSS_SELECTOR, ".count .n").text == "1"
    party = console.find("section[aria-labelledby=wb-party]")
    console.wait(lambda d: "赵红梅" in party.text, message="the unreported party member")
    assert "刘建国" not in party.text                          # reported: not listed as waiting
    assert "报到率（1/2）" in party.text
    console.assert_accessible("workbench")
    console.settle()
    console.screenshot("workbench")
