"""Demo party structure, party members, organisations and community workers for the demo street.

Loaded through the registry's own use cases (so every rule, event and fact is the
real one) on top of the generated residents. Deterministic: the same residents
give the same demo. Nobody here is real.
"""
from datetime import date
from random import Random

from linli.demo import people
from services.registry import identity, organizations, party, workers
from shared import clock

EMPLOYERS = ["上海电气集团党委", "复旦大学党委", "同济大学党委", "上海烟草集团党委", "杨浦区教育局党委",
             "海军军医大学第一附属医院党委", "上海城投集团党委", "中国银行上海市分行党委", "杨浦区卫生健康委党委",
             "上海隧道工程股份有限公司党委"]
POSTS = ["building_liaison", "security_patrol", "environment", "policy_outreach", "care_visits", "civility",
         "consultation", "volunteer"]


def _adults(tx, community_code, today):
    rows = tx.all("SELECT id, birth_date FROM residents WHERE community_code = %s AND status = 'active' ORDER BY id",
                  (community_code,))
    return [(r["id"], identity.age_on(r["birth_date"], today)) for r in rows
            if 20 <= identity.age_on(r["birth_date"], today) <= 85]


def load_civic(tx, vault, communities, instance_code, today=None):
    """Party committees and branches, members (most reported), two teams and two workers per community."""
    today = today or clock.today()
    if tx.one("SELECT EXISTS (SELECT 1 FROM party_orgs) AS any")["any"]:
        return {}
    caller = {"actor": "demo", "scope": instance_code}
    rnd = Random(2026)
    counts = {"party_members": 0, "organizations": 0, "workers": 0}
    # Workers are people of working age who need not live in the street: drawn from another generation.
    worker_people = (p for p in people.generate(len(communities) * 10, communities, seed=f"workers:{instance_code}", today=today)
                     if 25 <= identity.age_on(p["birth_date"], today) <= 55)
    for c in communities:
        estate = c["estate"]
        party.create_org(tx, {"community_code": c["code"], "kind": "committee", "name": f"{estate}社区党委"}, caller)
        branches = [party.create_org(tx, {"community_code": c["code"], "kind": "branch",
                                          "name": f"{estate}第{n}党支部"}, caller)["id"] for n in ("一", "二")]
        adults = _adults(tx, c["code"], today)
        for resident_id, age in adults[::9]:
            joined = date(today.year - rnd.randint(1, max(1, age - 19)), rnd.randint(1, 12), 1)
            category = "retired" if age >= 60 else ("student" if age < 23 else "on_the_job")
            party.register(tx, {"resident_id": resident_id, "category": category,
                                "membership_org": rnd.choice(EMPLOYERS) if category == "on_the_job" else f"{estate}社区党委",
                                "joined_party": joined.isoformat(), "party_org_id": rnd.choice(branches)},
                           caller, today=today)
            counts["party_members"] += 1
            if rnd.random() < 0.75:
                party.report(tx, resident_id, {"reported_on": date(today.year, 3, 5).isoformat()
                                               if date(today.year, 3, 5) <= today else today.isoformat(),
                                               "posts": rnd.sample(POSTS, rnd.randint(1, 3))}, caller, today=today)
        leaders = [rid for rid, age in adults if 35 <= age <= 70][:2]
        for leader, (name, category, team) in zip(leaders, [
                (f"{estate}平安巡逻队", "volunteer_team", "security_patrol"),
                (f"{estate}老年合唱团", "interest_culture", None)]):
            organizations.register(tx, {"name": name, "category": category, "subcategory": team,
                                        "community_code": c["code"], "leader_resident_id": leader,
                                        "activities": ["public_safety"] if team else ["culture_sports", "elderly_care"],
                                        "founded_on": date(2015 + rnd.randint(0, 8), rnd.randint(1, 12), 1).isoformat(),
                                        "status": "active"}, caller, today=today)
            counts["organizations"] += 1
        for role in ("secretary", "director"):
            person = next(worker_people)
            workers.appoint(tx, vault, {"name": person["name"], "id_number": person["id_number"],
                                        "phone": person["phone"], "role": role, "community_code": c["code"],
                                        "origin": rnd.choice(["kept_on", "recruited"]),
                                        "started_on": date(2021, 1, 1).isoformat()}, caller, today=today)
            counts["workers"] += 1
    return counts
