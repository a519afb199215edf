"""Demo consultation: matters in every community of the demo street, at every stage of the three rounds.

Loaded through the consultation service's own use cases (state machine, events and facts are the
real ones), with raisers and participants drawn from the demo residents. Nobody here is real.
"""
from datetime import timedelta

from services.consultation import decisions, deliberation, matters
from shared import clock
from shared.errors import Forbidden, NotFound

MATTERS = [
    ("parking", "reception_day", "小区夜间停车难", "晚上8点后小区内车辆乱停，消防通道被占，希望重新规划停车位。"),
    ("garbage_sorting", "grid_patrol", "垃圾厢房异味大", "3号楼旁垃圾厢房夏天异味明显，湿垃圾桶清运不及时。"),
    ("corridor_clutter", "suggestion_box", "楼道堆放杂物", "5号楼2单元楼道长期堆放纸箱和旧家具，存在消防隐患。"),
    ("greening", "online", "绿化带缺乏养护", "中心花园绿化带杂草丛生，部分树木枯死，希望补种。"),
    ("noise", "hotline", "广场舞音响扰民", "每晚7点到9点广场舞音响声音过大，影响老人和学生休息。"),
    ("elevator", "discussion_book", "老楼加装电梯", "8号楼六层住户多为老人，希望推进加装电梯，协调低层住户意见。"),
]


def people_of(people):
    """The registry's batched answer (`account_holders`) made from its one-at-a-time one: the demo
    asks the registry in-process, where a question costs nothing."""
    def ask(resident_ids, caller):
        answer = {"holders": {}, "not_found": [], "forbidden": []}
        for rid in sorted(set(resident_ids)):
            try:
                answer["holders"][str(rid)] = people(rid, caller)
            except NotFound:
                answer["not_found"].append(rid)
            except Forbidden:
                answer["forbidden"].append(rid)
        return answer
    return ask


def load_consultation(tx, people, residents_by_community, instance_code):
    """residents_by_community: {community code: [resident ids]}. Returns counts, or {} if loaded before."""
    if tx.one("SELECT EXISTS (SELECT 1 FROM matters) AS any")["any"]:
        return {}
    now = clock.now()
    counts = {"matters": 0, "meetings": 0, "published_results": 0}
    for code, ids in sorted(residents_by_community.items()):
        caller = {"actor": "demo:居委会", "scope": code, "role": "community_worker"}
        raised = []
        for n, (category, channel, title, text) in enumerate(MATTERS):
            m = matters.raise_matter(tx, people, {"community_code": code, "category": category, "channel": channel,
                                                  "title": title, "description": text,
                                                  "raiser_resident_id": ids[n] if n < len(ids) else None,
                                                  "urgency": "urgent" if category == "corridor_clutter" else "normal"},
                                     caller, now)
            raised.append(m)
            counts["matters"] += 1
        # a simple matter answered at once and rated by its raiser (which settles it)
        matters.screen(tx, raised[2]["id"], {"outcome": "answer", "note": "已联系楼组长组织清理，三日内完成。"},
                       caller, now)
        if raised[2]["raiser_resident_id"]:
            matters.rate(tx, people, raised[2]["id"], {"resident_id": raised[2]["raiser_resident_id"], "score": 5},
                         caller, now)
        matters.screen(tx, raised[3]["id"], {"outcome": "refer", "referred_to": "区绿化市容局"}, caller, now)
        matters.screen(tx, raised[5]["id"], {"outcome": "escalate", "note": "加装电梯需街道协调资金和审批"},
                       caller, now)
        if code.endswith("001") and len(ids) >= 6:
            _deliberate(tx, people, raised[0], ids, caller, now)
            counts["meetings"] += 1
            counts["published_results"] += 1
    return counts


def _deliberate(tx, people, matter, ids, caller, now):
    """The parking matter through the three rounds, to a published result."""
    code = matter["community_code"]
    matters.screen(tx, matter["id"], {"outcome": "deliberate"}, caller, now)
    item = deliberation.create_item(tx, {"community_code": code, "title": "停车位重新规划",
                                         "matter_ids": [matter["id"]]}, caller, now)
    option = deliberation.add_option(tx, item["id"], {"title": "绿化带改建30个停车位", "budget": "180000"},
                                     caller, now)["options"][0]["id"]
    roster = [{"role": "resident_rep", "resident_id": ids[0], "name": "居民代表"},
              {"role": "party_member", "resident_id": ids[1], "name": "党员代表"},
              {"role": "building_captain", "resident_id": ids[2], "name": "楼组长"},
              {"role": "community_police", "name": "马警官", "affiliation": "长海路派出所"},
              {"role": "property_company", "name": "周经理", "affiliation": "上海长城物业"}]
    for p in roster:
        if "resident_id" in p:
            p["name"] = people(p["resident_id"], caller)["name"]
    meeting = deliberation.schedule(tx, people_of(people), {"community_code": code, "title": "停车问题协商议事会",
                                                            "starts_at": (now + timedelta(minutes=5)).isoformat(),
                                                            "place": "居委会二楼会议室", "quorum": 3,
                                                            "agenda_item_ids": [item["id"]], "roster": roster},
                                    caller, now)
    present = [p["id"] for p in meeting["roster"]]
    deliberation.open_meeting(tx, meeting["id"], {"participant_ids": present}, caller)
    for pid in present[:4]:
        deliberation.vote(tx, meeting["id"], {"participant_id": pid, "agenda_item_id": item["id"],
                                              "option_id": option, "choice": "approve"}, caller)
    deliberation.close(tx, meeting["id"], {"minutes": "五方代表协商，同意绿化带改建停车位方案，物业负责施工。"},
                       caller, now)
    decision = decisions.decide(tx, {"meeting_id": meeting["id"], "agenda_item_id": item["id"],
                                     "responsible": "居委会、物业公司", "budget": "180000",
                                     "deadline": (now + timedelta(days=60)).date().isoformat()}, caller, now)
    decision = decisions.add_task(tx, decision["id"], {"title": "绿化带改建停车位施工", "responsible": "物业公司",
                                                       "due_on": (now + timedelta(days=30)).date().isoformat()},
                                  caller)
    decisions.progress(tx, decision["tasks"][0]["id"], {"progress": 100, "note": "30个车位全部完工"}, caller)
    decisions.publish(tx, decision["id"], {"summary": "新增停车位30个，夜间停车秩序明显好转。"}, caller, now)
    matters.rate(tx, people, matter["id"], {"resident_id": matter["raiser_resident_id"], "score": 5}, caller, now)
