"""Demo points: the usual catalogue of service categories and rewards, and three months of service.

Loaded through the points service's own use cases (rules, caps, ledger, events
and facts are the real ones) for the demo street's reported party members and
volunteer-team members. Deterministic for the same residents; nobody is real.
"""
from datetime import date, datetime, time, timedelta
from random import Random

from services.points import catalogue, records, redemptions
from shared import clock

CATEGORIES = [
    ("security_patrol", "平安巡逻", "hour", 10, 40, 2000, ["community_worker"]),
    ("elderly_visit", "探访独居老人", "occasion", 5, 15, None, ["community_worker", "organization_leader"]),
    ("garbage_sorting", "垃圾分类指导", "hour", 8, 32, 1500, ["community_worker", "organization_leader"]),
    ("consultation", "参与议事协商", "occasion", 10, None, 120, ["community_worker"]),
    ("party_education", "党员教育活动", "occasion", 5, None, 60, ["community_worker"]),
    ("volunteer_activity", "志愿服务活动", "hour", 10, 50, 2500, ["community_worker", "organization_leader"]),
]
REWARDS = [("环保购物袋", "material", 50, 200, 2), ("家用急救包", "material", 200, 50, 1),
           ("社区理发服务券", "material", 30, 500, 6), ("年度优秀志愿者", "honorary", 1000, None, 1),
           ("党员先锋岗", "honorary", 800, None, 1)]
NOTES = {"security_patrol": "夜间小区巡逻，劝导电动车不进楼道", "elderly_visit": "探访独居老人，测量血压并陪聊",
         "garbage_sorting": "早高峰垃圾厢房值守，指导分类投放", "consultation": "参加停车难议事会并发言",
         "party_education": "参加支部主题党日学习", "volunteer_activity": "参与社区义诊和文明创建志愿服务"}


def load_points(tx, holders, people, instance_code, today=None):
    """people: resident ids to give service records to. Returns counts, or {} if loaded before."""
    today = today or clock.today()
    if tx.one("SELECT EXISTS (SELECT 1 FROM categories) AS any")["any"]:
        return {}
    admin = {"actor": "demo:长海路街道", "scope": instance_code, "role": "street_admin", "organization_id": None}
    start = date(today.year - 1, 1, 1)
    for code, name, unit, per, daily, yearly, roles in CATEGORIES:
        catalogue.create_category(tx, {"code": code, "name": name, "unit": unit, "points_per_unit": per,
                                       "daily_cap": daily, "yearly_cap": yearly, "verifier_roles": roles,
                                       "valid_from": start.isoformat()}, admin, today=start)
    rewards = [catalogue.create_reward(tx, {"name": n, "kind": k, "points_cost": c, "stock": s,
                                            "per_person_limit": lim}, admin)
               for n, k, c, s, lim in REWARDS]
    rng = Random(12)
    logged, to_post = 0, []
    for resident_id in people:
        for _ in range(rng.randint(3, 8)):
            code = rng.choice(CATEGORIES)[0]
            day = today - timedelta(days=rng.randint(1, 90))
            at = datetime.combine(day, time(rng.choice((8, 9, 14, 19)), 0), clock.zone())
            hours = rng.choice(("1", "1.5", "2", "2.5", "3"))
            r = records.create(tx, holders, {"resident_id": resident_id, "category_code": code,
                                             "served_at": at.isoformat(), "hours": hours,
                                             "description": NOTES[code]}, admin, 30)
            logged += 1
            if rng.random() < 0.85:
                to_post.append(r["id"])
    posted = records.post(tx, to_post, admin, {})["posted"] if to_post else 0
    redeemed = 0
    rows = tx.all("SELECT id FROM accounts WHERE kind = 'person' AND balance >= 50 ORDER BY id")
    for row in rows[::3]:
        done = redemptions.request(tx, {"account_id": row["id"], "reward_id": rewards[0]["id"]}, admin,
                                   instance_code)
        redemptions.fulfil(tx, done["id"], {}, admin, instance_code)
        redeemed += 1
    return {"categories": len(CATEGORIES), "rewards": len(rewards), "service_records": logged,
            "posted": posted, "redemptions": redeemed}
