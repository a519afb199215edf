"""积分核销 in a real browser: a community worker ticks several pending service records on the verification
queue and verifies them in one go; the page says what was posted, the ledger holds it, and a record of
another community is never offered. A record voided after the page loaded refuses the whole batch: its
reason is shown beside its row and nothing is posted."""
from selenium.webdriver.common.by import By

from tests.integration.test_points_api import COMMUNITY, OTHER, P, log, resident

PASSWORD = "Aa1-long-enough"
BOX = "label.el-checkbox"   # Element Plus puts the checkbox's aria-label on its <label>


def setup_queue(api):
    """A category with its rule, residents with accounts, and pending records (four here, one next door)."""
    made = api.post(f"{P}/categories", json={"code": "security_patrol", "name": "平安巡逻", "unit": "hour",
                                              "points_per_unit": 10, "daily_cap": 40,
                                              "verifier_roles": ["community_worker"]})
    assert made.status_code == 201, made.text
    people = {name: resident(api, seq, name=name) for seq, name in [(21, "陈志强"), (22, "刘秀兰"), (23, "李桂英")]}
    people["吴建华"] = resident(api, 24, community=OTHER, name="吴建华")
    accounts = {}
    for name, rid in people.items():
        opened = api.post(f"{P}/accounts", json={"resident_id": rid})
        assert opened.status_code == 201, opened.text
        accounts[name] = opened.json()["id"]
    records = {}
    for key, name, hours in [("a", "陈志强", "2"), ("b", "刘秀兰", "1.5"), ("c", "李桂英", "1"),
                             ("d", "陈志强", "1"), ("other", "吴建华", "3")]:
        r = log(api, people[name], hours=hours)
        assert r.status_code == 201, r.text
        records[key] = r.json()["id"]
    return accounts, records


def tick(console, record_id):
    """Tick a row's checkbox as a person would: click its box, found by its accessible name."""
    label = console.find(f'{BOX}[aria-label="选择记录 {record_id}"]')
    console.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", label)
    label.click()
    console.wait(lambda d: "is-checked" in label.get_attribute("class"), 5, f"record {record_id} ticked")


def row_of(console, record_id):
    box = console.d.find_element(By.CSS_SELECTOR, f'{BOX}[aria-label="选择记录 {record_id}"]')
    return box.find_element(By.XPATH, "ancestor::tr[1]")


def queue_ids(console):
    return {int(el.get_attribute("aria-label").split()[-1])
            for el in console.finds(f'{BOX}[aria-label^="选择记录 "]')}


def open_queue(console, expected):
    console.open("points/verify")
    console.text_appears("积分核销")
    console.wait(lambda d: expected <= queue_ids(console), 15, f"records {sorted(expected)} listed")
    console.text_appears("平安巡逻")   # category names loaded


def status_of(sql, ids):
    return {r["id"]: r["status"] for r in sql("SELECT id, status FROM points.service_records WHERE id = ANY(%s)",
                                              (list(ids),))}


def test_a_worker_verifies_a_batch_and_sees_it_posted(console, api, sql, make_account):
    accounts, rec = setup_queue(api)
    make_account("wangli", "community_worker", COMMUNITY, name="王丽")
    console.sign_in("wangli", PASSWORD)
    open_queue(console, {rec["a"], rec["b"], rec["c"], rec["d"]})
    # The record of the neighbouring community is not offered to this worker.
    assert rec["other"] not in queue_ids(console)
    assert console.text_absent("吴建华")
    console.assert_accessible("points verify queue")

    for key in ("a", "b", "c"):
        tick(console, rec[key])
    console.text_appears("已选 3 条")
    console.d.execute_script("window.scrollTo(0, 0)")
    console.settle()
    console.screenshot("points-verify")
    console.click_text("核销所选")
    console.text_appears("确定核销所选的 3 条服务记录吗")
    console.assert_accessible("points verify confirm")
    console.click_text("确定", ".el-message-box button")

    # 2 h + 1.5 h + 1 h at 10 points an hour.
    console.text_appears("已核销 3 条，共入账 45 积分")
    console.wait(lambda d: queue_ids(console) == {rec["d"]}, 15, "only the unticked record left in the queue")
    console.text_appears("已选 0 条")
    console.assert_accessible("points verify, after the batch")

    assert status_of(sql, rec.values()) == {rec["a"]: "posted", rec["b"]: "posted", rec["c"]: "posted",
                                            rec["d"]: "pending", rec["other"]: "pending"}
    balances = {r["id"]: r["balance"] for r in sql("SELECT id, balance FROM points.accounts WHERE id = ANY(%s)",
                                                   (list(accounts.values()),))}
    assert balances == {accounts["陈志强"]: 20, accounts["刘秀兰"]: 15, accounts["李桂英"]: 10, accounts["吴建华"]: 0}
    posted_by = sql("SELECT DISTINCT decided_by FROM points.service_records WHERE id = ANY(%s)",
                    ([rec["a"], rec["b"], rec["c"]],))
    assert posted_by == [{"decided_by": "account:wangli:王丽"}], posted_by
    statement = api.get(f"{P}/accounts/{accounts['陈志强']}/statement").json()
    assert [(x["kind"], x["change"], x["service_record_id"]) for x in statement["lines"]] == [
        ("posting", 20, rec["a"])]

    # The account page shows the posting (and the other community's account is not this worker's).
    console.open(f"points/accounts/{accounts['陈志强']}")
    console.text_appears("积分账户：陈志强")
    console.wait(lambda d: any(el.text.strip() == "20" for el in d.find_elements(By.CSS_SELECTOR, ".figure .value")),
                 15, "balance 20")
    console.text_appears(str(rec["a"]))
    console.assert_accessible("points account")
    console.settle()
    console.screenshot("points-account")
    assert console.fetch("GET", f"{P}/accounts/{accounts['吴建华']}")["status"] == 404


def test_a_record_voided_meanwhile_refuses_the_batch_beside_its_row(console, api, sql, make_account):
    accounts, rec = setup_queue(api)
    make_account("wangli", "community_worker", COMMUNITY, name="王丽")
    console.sign_in("wangli", PASSWORD)
    open_queue(console, {rec["a"], rec["b"], rec["c"], rec["d"]})
    for key in ("a", "b", "d"):
        tick(console, rec[key])
    # Meanwhile, someone else voids one of them (the page still shows it).
    voided = api.post(f"{P}/records/{rec['b']}/void", json={"reason": "服务时间登记有误"})
    assert voided.status_code == 200, voided.text
    console.click_text("核销所选")
    console.click_text("确定", ".el-message-box button")

    console.text_appears("有 1 条记录未能核销，本批次全部未入账")
    console.wait(lambda d: "voided record cannot become posted" in row_of(console, rec["b"]).text, 15,
                 "the reason beside the voided record's row")
    assert "cannot" not in row_of(console, rec["a"]).text and "cannot" not in row_of(console, rec["d"]).text
    assert "refused-row" in row_of(console, rec["b"]).get_attribute("class")
    console.text_appears("已选 3 条")          # nothing was unticked: the worker decides
    console.assert_accessible("points verify, refused batch")

    assert status_of(sql, rec.values()) == {rec["a"]: "pending", rec["b"]: "voided", rec["c"]: "pending",
                                            rec["d"]: "pending", rec["other"]: "pending"}
    assert sql("SELECT count(*) AS n FROM points.transfers")[0]["n"] == 0
    assert {r["balance"] for r in sql("SELECT balance FROM points.accounts WHERE id = ANY(%s)",
                                      (list(accounts.values()),))} == {0}

    # Untick the refused one and verify the rest: now they post.
    console.click_text("取消勾选未通过的记录")
    console.text_appears("已选 2 条")
    console.click_text("核销所选")
    console.click_text("确定", ".el-message-box button")
    console.text_appears("已核销 2 条，共入账 30 积分")
    assert status_of(sql, [rec["a"], rec["d"]]) == {rec["a"]: "posted", rec["d"]: "posted"}
