"""三上三下 in a real browser, as a community worker carries one matter through it: raising it (the page
warns of a similar open matter and names it), screening it to deliberation, an agenda item with options,
a meeting with its roster, attendance, votes and minutes, the decision, a task reported to 100 %, the
result published, and the raiser's rating, which settles it. Every step is taken on the pages; the
matter's timeline shows them and the API and database hold the settled, rated matter."""
from datetime import timedelta
from zoneinfo import ZoneInfo

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from shared import clock
from tests.integration.test_consultation_api import C1, PARKING, resident

PASSWORD = "Aa1-long-enough"
SHANGHAI = ZoneInfo("Asia/Shanghai")
OPTION_A, OPTION_B = "绿化带改建30个停车位", "错时共享周边单位车位"


# -- doing things on the pages as a person does ----------------------------------------------------------
def choose(console, css, option):
    """Open the Element Plus select holding `css` and click the option reading `option`."""
    el = console.d.find_element(By.CSS_SELECTOR, css)
    wrapper = el.find_element(By.XPATH, "ancestor-or-self::div[contains(@class, 'el-select__wrapper')][1]")
    console.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", wrapper)
    wrapper.click()
    console.click_text(option, ".el-select-dropdown__item")


def pick_resident(console, css, name):
    """The resident picker: type a name, wait for the register's answer, click the resident."""
    box = console.find(css)
    console.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    box.click()
    box.send_keys(name)

    def offered(d):
        for li in d.find_elements(By.CSS_SELECTOR, ".el-select-dropdown__item"):
            if li.is_displayed() and li.text.startswith(f"{name}（"):
                return li
        return False
    console.wait(offered, 15, f"{name} offered by the resident picker").click()


def type_date(console, css, text):
    """A date picker takes its date typed in its format, then Enter."""
    el = console.find(css)
    console.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(text, Keys.ENTER)
    console.wait(lambda d: el.get_attribute("value") == text, 5, f"{css} reads {text}")

    # Enter closes the panel (Escape would close a dialog around it too).
    console.wait(lambda d: not [p for p in d.find_elements(By.CSS_SELECTOR, ".el-picker__popper") if p.is_displayed()],
                 5, "the date panel closed")
    assert el.get_attribute("value") == text


def replace_text(console, css, text):
    """Type over what a field holds (Selenium's clear() does not reach Vue's v-model)."""
    el = console.find(css)
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(text)
    console.wait(lambda d: el.get_attribute("value") == text, 5, f"{css} reads {text}")


def submit_dialog(console):
    console.click_text("提交", ".el-dialog button")


def click_label(console, text, css):
    """A radio or checkbox is chosen by clicking its label, as a person does."""
    console.click_text(text, css)


def vote(console, person, option, choice):
    group = console.find(f'span.choices[aria-label="{person} · {option}"]')
    for b in group.find_elements(By.CSS_SELECTOR, "button"):
        if b.text.strip() == choice:
            console.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", b)
            b.click()
            break
    else:
        raise AssertionError(f"no {choice} button for {person} on {option}")
    # Once recorded, the buttons give way to the recorded choice.
    console.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, f'span.choices[aria-label="{person} · {option}"]'),
                 15, f"{person}'s vote on {option} recorded")


def status_tag(console):
    return console.find(".toolbar .el-tag--dark").text.strip()


def wait_status(console, text):
    console.wait(lambda d: status_tag(console) == text, 15, f"status {text}")


def test_a_matter_from_raising_with_a_similar_warning_to_settled_and_rated(console, api, sql, make_account):
    raiser = resident(api, 41, "陈志强")
    other_raiser = resident(api, 42, "刘秀兰")
    resident(api, 43, "李桂英")
    similar = api.post("/api/v1/matters", json={**PARKING, "raiser_resident_id": other_raiser})
    assert similar.status_code == 201, similar.text
    similar_id = similar.json()["id"]
    make_account("wangli", "community_worker", C1, name="王丽")
    console.sign_in("wangli", PASSWORD)

    # -- the board, and raising a matter there (一上) ------------------------------------------------------
    console.open("matters")
    console.text_appears(f"#{similar_id} 小区夜间停车难")
    console.assert_accessible("matters board")
    console.settle()
    console.screenshot("consultation-board")
    console.click_text("反映事项", ".toolbar button")
    console.find("#m-title")
    choose(console, "#m-category", "停车管理")
    choose(console, "#m-channel", "居民接待日")
    console.type("#m-title", "停车位太少")
    console.type("#m-description", "小区晚上车辆乱停，停车位不足，消防通道常被占用。")
    console.type("#m-building", "12号楼")
    pick_resident(console, "#m-raiser", "陈志强")
    console.text_appears("相似事项提醒")
    warning = console.find(".similar-alert").text
    assert f"#{similar_id} 小区夜间停车难" in warning and "已反映" in warning, warning
    console.assert_accessible("raise a matter, similar warning")
    # Submitted as it is, the service refuses it as a likely repeat; the page says so beside the text.
    console.click_text("提交", "form button[type=submit]")
    assert f"like open matter {similar_id}" in console.field_error("#m-description")
    assert sql("SELECT count(*) AS n FROM consultation.matters")[0]["n"] == 1
    click_label(console, "确认不是同一事项，仍然新建", "label.el-checkbox")
    console.click_text("提交", "form button[type=submit]")
    console.wait(lambda d: "/console/matters/" in d.current_url and not d.current_url.endswith("/new"), 15,
                 "the new matter's page")
    matter_id = int(console.d.current_url.rstrip("/").split("/")[-1])
    assert matter_id != similar_id
    console.text_appears(f"#{matter_id} 停车位太少")
    wait_status(console, "已反映")
    console.text_appears(f"#{similar_id}")                     # 相似于 #<the open one>
    assert sql("SELECT similar_to, raiser_resident_id FROM consultation.matters WHERE id = %s",
               (matter_id,)) == [{"similar_to": similar_id, "raiser_resident_id": raiser}]

    # -- screening to deliberation (一下), an agenda item (二上) -----------------------------------------
    console.click_text("筛选（一下）")
    click_label(console, "提交协商议事", ".el-dialog label.el-radio")
    console.assert_accessible("screening dialog")
    submit_dialog(console)
    wait_status(console, "协商中")
    console.click_text("纳入议题")
    console.find("#i-title")
    assert console.find("#i-title").get_attribute("value") == "停车位太少"    # the matter's title, offered
    replace_text(console, "#i-title", "停车位重新规划")
    submit_dialog(console)
    console.wait(lambda d: "/console/agenda-items/" in d.current_url, 15, "the agenda item's page")
    item_id = int(console.d.current_url.rstrip("/").split("/")[-1])
    console.text_appears(f"#{item_id} 停车位重新规划")
    console.text_appears("停车位太少")
    for title, budget in [(OPTION_A, "180000"), (OPTION_B, None)]:
        console.click_text("新增方案")
        console.type("#o-title", title)
        if budget:
            console.type("#o-budget", budget)
        submit_dialog(console)
        console.wait(lambda d: title in d.find_element(By.CSS_SELECTOR, "ol.options").text, 15, f"option {title}")
    console.assert_accessible("agenda item")

    # -- the meeting: roster, attendance, votes, minutes (二上二下) -------------------------------------
    console.click_text("安排议事会")
    console.find("#mt-title")
    starts = (clock.now().astimezone(SHANGHAI) + timedelta(days=2)).replace(hour=19, minute=0)
    type_date(console, "#mt-start", starts.strftime("%Y-%m-%d %H:%M"))
    console.type("#mt-place", "居委会二楼会议室")
    pick_resident(console, "#rr-res-0", "陈志强")                 # the raiser, from the register
    console.wait(lambda d: d.find_element(By.CSS_SELECTOR, "#rr-name-0").get_attribute("value") == "陈志强", 5,
                 "the picked resident's name filled in")
    pick_resident(console, "#rr-res-1", "李桂英")
    for row, name, affiliation in [(2, "赵国庆", ""), (3, "马警官", "长海路派出所"), (4, "周经理", "上海长城物业")]:
        console.type(f"#rr-name-{row}", name)
        if affiliation:
            console.type(f"#rr-aff-{row}", affiliation)
    console.assert_accessible("schedule a meeting")
    console.click_text("提交", "form button[type=submit]")
    console.wait(lambda d: "/console/meetings/" in d.current_url and "/new" not in d.current_url, 15,
                 "the meeting's page")
    meeting_id = int(console.d.current_url.rstrip("/").split("/")[-1])
    wait_status(console, "待召开")
    console.text_appears("马警官（长海路派出所）")

    console.click_text("开会并签到")
    console.text_appears("勾选到会人员后开会")
    for name in ("陈志强", "李桂英", "赵国庆", "马警官", "周经理"):
        box = next(b for b in console.finds(".el-dialog label.el-checkbox") if b.is_displayed()
                   and b.text.strip().split("（")[0] == name)
        box.click()
        console.wait(lambda d: "is-checked" in box.get_attribute("class"), 5, f"{name} ticked present")
    submit_dialog(console)
    wait_status(console, "进行中")
    console.text_appears("法定人数 3，已到 5 人")
    for person, choice in [("陈志强", "赞成"), ("李桂英", "赞成"), ("赵国庆", "赞成"), ("马警官", "弃权"),
                           ("周经理", "反对")]:
        vote(console, person, OPTION_A, choice)
    vote(console, "陈志强", OPTION_B, "反对")
    # One priority score, as the meeting gives them.
    choose(console, '[aria-label="陈志强 优先度打分（1-5）"]', "5")
    score_cell = console.d.find_element(By.CSS_SELECTOR, '[aria-label="陈志强 优先度打分（1-5）"]').find_element(
        By.XPATH, "ancestor::span[contains(@class, 'score')][1]")
    score_cell.find_element(By.XPATH, ".//button").click()
    console.text_appears("优先度：5")
    console.text_appears(f"通过的方案：{OPTION_A}")
    console.assert_accessible("meeting in session")
    console.settle()
    console.screenshot("consultation-meeting")

    console.click_text("结束会议")
    console.type("#cl-minutes", "五方代表协商：三票赞成绿化带改建30个停车位，一票反对，一票弃权。")
    submit_dialog(console)
    wait_status(console, "已结束")
    console.text_appears("会议纪要")

    # -- the decision, its task, publication (三上三下) -------------------------------------------------
    console.click_text("形成决定（三上）")
    console.type("#d-resp", "居委会、长城物业")
    type_date(console, "#d-deadline", (clock.today() + timedelta(days=60)).isoformat())
    console.assert_accessible("decision dialog")
    submit_dialog(console)
    console.wait(lambda d: "/console/decisions/" in d.current_url, 15, "the decision's page")
    decision_id = int(console.d.current_url.rstrip("/").split("/")[-1])
    console.text_appears("赞成 3，反对 1，弃权 1（到会 5 人）")
    console.text_appears("180,000.00")

    console.click_text("新增任务")
    console.type("#t-title", "绿化带改建停车位施工")
    console.type("#t-resp", "上海长城物业")
    type_date(console, "#t-due", (clock.today() + timedelta(days=30)).isoformat())
    submit_dialog(console)
    console.text_appears("绿化带改建停车位施工")
    publish = [b for b in console.finds(".head button") if b.text.strip() == "公示结果（三下）"]
    assert len(publish) == 1 and not publish[0].is_enabled()     # not before every task is done
    console.click_text("报告进度")
    progress = console.find("#p-progress")
    progress.send_keys(Keys.CONTROL, "a")
    progress.send_keys("100", Keys.TAB)
    console.type("#p-note", "30个车位全部完工并划线")
    submit_dialog(console)
    console.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".task .el-progress.is-success"), 15, "the task at 100%")
    console.click_text("公示结果（三下）")
    console.type("#pb-summary", "新增停车位30个，夜间停车秩序明显好转。")
    submit_dialog(console)
    wait_status(console, "已公示")
    console.text_appears("新增停车位30个，夜间停车秩序明显好转。")
    console.assert_accessible("decision, published")
    console.settle()
    console.screenshot("consultation-decision")

    # -- the raiser's rating settles the matter (三下) --------------------------------------------------
    console.click_text(f"#{matter_id} 停车位太少", "a")
    console.wait(lambda d: d.current_url.endswith(f"/console/matters/{matter_id}"), 15, "the matter's page")
    wait_status(console, "已公示")
    console.click_text("居民评价")
    console.text_appears(f"反映人：#{raiser}")
    click_label(console, "5 很满意", ".el-dialog label.el-radio")
    console.type("#r-comment", "停车方便多了，谢谢居委会")
    console.assert_accessible("rating dialog")
    submit_dialog(console)
    wait_status(console, "已办结")
    timeline = console.find(".el-timeline").text
    for step in ("已反映", "协商中", "已决定", "实施中", "已公示", "已办结"):
        assert step in timeline, (step, timeline)
    assert "rated 5 by the raiser" in timeline and "account:wangli:王丽" in timeline
    assert timeline.index("已办结") < timeline.index("已反映")          # newest first
    console.assert_accessible("matter, settled")
    console.settle()
    console.screenshot("consultation-matter")

    # -- what the API and the database hold -------------------------------------------------------------
    matter = api.get(f"/api/v1/matters/{matter_id}").json()
    assert matter["status"] == "settled" and matter["settled_at"] and matter["agenda_item_id"] == item_id
    assert [h["status"] for h in matter["history"]] == ["raised", "deliberating", "decided", "implementing",
                                                        "published", "settled"]
    results = api.get(f"/api/v1/public/results?under={C1}").json()["items"]
    mine = next(r for r in results if r["id"] == decision_id)
    assert (mine["ratings"], mine["satisfied"], mine["progress"]) == (1, 1, 100), mine
    assert sql("SELECT resident_id, score, comment FROM consultation.ratings WHERE matter_id = %s", (matter_id,)) == [
        {"resident_id": raiser, "score": 5, "comment": "停车方便多了，谢谢居委会"}]
    assert sql("SELECT status FROM consultation.meetings WHERE id = %s", (meeting_id,)) == [{"status": "closed"}]
    assert api.get(f"/api/v1/matters/{similar_id}").json()["status"] == "raised"   # the similar one is untouched
