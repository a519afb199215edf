"""Triggers: other services' events that someone should hear about, turned into notices.

Each trigger's key is its event's id, so an event delivered twice (or replayed from a dead-letter
queue) records one notice and reaches each person once per channel. What a person hears:
- a meeting scheduled, moved or cancelled: the residents on its roster;
- a matter's progress (screened, decided on, published, settled): whoever raised it;
- points posted (gathered into the day's digest) or a redemption fulfilled: the member;
- an organisation's notice (sent through the API by its leader): its members.
"""
from services.notification import fanout
from shared import clock

MEETINGS = {"meeting_scheduled": "meeting_scheduled", "meeting_moved": "meeting_moved",
            "meeting_cancelled": "meeting_cancelled"}
MATTER_STATUS = {"answered": "已答复", "deliberating": "提交议事协商", "referred": "已转交相关部门办理",
                 "rejected": "未予受理", "escalated": "已提交街道处理", "merged": "已与相同事项合并办理",
                 "decided": "已形成协商决定", "implementing": "正在落实", "published": "落实结果已公示",
                 "settled": "已办结", "screened": "已受理"}
# Every channel the person has an address for; their opt-outs decide the rest.
TRIGGER_CHANNELS = fanout.DEFAULT_CHANNELS


def _notice(env, template, category, priority, context, scope_code):
    return {"trigger_key": f"{env['type']}:{env['event_id']}", "kind": "trigger", "category": category,
            "priority": priority, "template_code": template, "context": context, "target": None,
            "scope_code": scope_code, "created_by": f"event:{env['source']['service']}"}


def meeting(tx, env, now, digest_hour):
    p = env["payload"]
    ids = p.get("participant_resident_ids") or []
    if not ids:
        return None
    context = {"meeting": {"title": p["title"], "starts_at": _local(p["starts_at"]), "place": p["place"]}}
    notice = _notice(env, MEETINGS[env["type"]], "meetings", "urgent", context, p["community_code"])
    return fanout.record(tx, notice, {"resident_ids": ids}, TRIGGER_CHANNELS, now, digest_hour)


def matter(tx, env, now, digest_hour):
    p = env["payload"]
    if env["type"] == "result_published":  # one decision may answer several raisers' matters
        raisers, status = p.get("raiser_resident_ids") or [], "published"
        ref = "、".join(str(i) for i in p.get("matter_ids") or [])
        about = {"id": ref, "title": "议事协商结果"}
    else:
        raisers = [p["raiser_resident_id"]] if p.get("raiser_resident_id") else []
        status = p.get("outcome") if env["type"] == "matter_screened" else p["status"]
        about = {"id": p["id"], "title": p.get("title") or f"第{p['id']}号事项"}
    if not raisers:  # anonymous: nobody to tell
        return None
    context = {"matter": {**about, "status": status, "status_name": MATTER_STATUS.get(status, status)}}
    notice = _notice(env, "matter_status", "matters", "normal", context, p["community_code"])
    return fanout.record(tx, notice, {"resident_ids": raisers}, TRIGGER_CHANNELS, now, digest_hour)


def points(tx, envs, now, digest_hour, categories=None):
    """points_posted arrive one per record, often thousands at once: each is a digest item."""
    out = []
    for env in envs:
        p = env["payload"]
        if env["type"] == "points_posted":
            context = {"points": p["points"], "hours": p["hours"], "served_on": p["served_on"],
                       "category": (categories or {}).get(p["category_code"], p["category_code"])}
            notice = _notice(env, "points_posted", "points", "digest", context, p["community_code"])
        else:
            context = {"points": p["points"], "category": p["reward_name"]}
            notice = _notice(env, "points_redeemed", "points", "normal", context, p["community_code"])
        out.append(fanout.record(tx, notice, {"resident_ids": [p["resident_id"]]}, TRIGGER_CHANNELS, now,
                                 digest_hour))
    return out


def _local(iso):
    """'2026-11-25T19:00:00+08:00' as a resident reads it: '2026-11-25 19:00'."""
    from datetime import datetime
    try:
        return datetime.fromisoformat(iso).astimezone(clock.zone()).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return str(iso)
