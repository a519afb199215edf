"""Figures that agree, proven by generated histories (issue 16, item 4).

Hypothesis generates sequences of operations on one street: registrations (with a move-in date
in the past), moves between communities, back-dated departures and deaths, corrections of tags
and residence type, people coming back after they left, matters raised (anonymously or by a
resident), merged into the open matter they repeat, answered, settled and rated, party members
registered, reporting (back-dated) and withdrawn, organisations founded (back-dated), joined and
left, handed to a new leader, suspended, reactivated and dissolved, service given and posted
(some of it over a cap), postings reversed, rewards redeemed and fulfilled or cancelled. The
points service follows the registry as its event handlers do: accounts refreshed on a move, a
report or a membership, handed over on leaving, frozen on a death. The operations run through
the services' own use cases on real PostgreSQL, day after day of a simulated clock; an
operation the service refuses changes nothing and the history goes on.

Then the signed fact batches are taken from the services' outboxes, as the relay would publish
them, and fed to the aggregator of the street and to the aggregator of a district (its own
database) that has the street as its registered child, as federation would deliver them. The
test checks, for every community, the street and the district:

- each figure the services report about themselves (the register's residents by age band, tag
  and residence type, party members and the report rate, organisations and their members, the
  consultation figures: matters raised and settled, settlement, on-time and satisfaction rates,
  median days to settle; the annual evaluation's points and hours and the points redeemed, per
  community and per member category) equals the street's roll-up and the district's roll-up, at the end of
  the period;
- for every day of the period, every stock in the roll-ups equals the register as it stood at
  the end of that day, and none is ever negative.

Real: PostgreSQL (the street's schemas in the test database, the district's aggregator in a
database of its own), Ed25519 signatures. No broker: nothing here is about transport. A
directive's reach and reads are generated in test_broadcast_figures_agree.py.
"""
from datetime import date, datetime, time, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from linli.demo import load_hierarchy
from services.aggregator import figures as agg_figures, ingest, store as agg_store
from services.consultation import figures as consultation_figures, matters
from services.points import accounts as points_accounts, catalogue, evaluation, handover, records, redemptions
from services.registry import holders, organizations, party, residents
from services.registry.identity import check_character
from shared import clock, envelope, facts
from shared.db import Tx, make_pool, on_pool
from shared.errors import DomainError
from shared.migrations import migrate
from shared.protect import Vault
from tests.conftest import ADMIN_DSN, TEST_DB, _dsn, app_tables

DISTRICT, STREET = "310110", "310110012"
COMMUNITIES = ("310110012001", "310110012002", "310110012003")
START = date(2026, 3, 2)
DLQ = "dead"
CALLER = {"actor": "test:figures", "scope": STREET, "role": "street_admin"}
DISTRICT_KEY = facts.Signer(facts._b64(b"\x44" * 32))
# Birth dates around the age bands' edges (18, 35, 60, 80) in the period, so people change band.
BIRTHS = ("20080315", "19910420", "19660510", "19460605", "19851111", "20080101")
TAGS = ("elderly_alone", "disabled", "low_income")
STOCKS = ("residents", "party_members", "organizations", "organization_members")
# The dimensions of those stocks compared day by day (age bands apart: they are read from cohorts).
COMPARED = ("", "residence_type", "tags", "report_status", "status", "role")


# -- the instances ------------------------------------------------------------------------------

class Street:
    """The street instance's services on the test database, a pool per schema, and its clock."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.vault = Vault.from_config(cfg)
        self.signer = facts.Signer.from_config(cfg)
        self.pools = {}
        self.day = START
        self.done = set()         # the use cases that changed something, for Hypothesis' statistics

    def pool(self, schema):
        if schema not in self.pools:
            self.pools[schema] = make_pool(self.cfg["DATABASE_URL"], schema, max_size=1)
            self.pools[schema].open(wait=True, timeout=30)
        return self.pools[schema]

    def run(self, schema, fn, *args, **kwargs):
        """One use case in its own committed transaction, as a worker runs it; None if refused."""
        tx = Tx(self.pool(schema), envelope.source_from_config(schema, self.cfg), signer=self.signer)
        try:
            result = fn(tx, *args, **kwargs)
        except DomainError:
            tx.finish(commit=False)
            return None
        except BaseException:
            tx.finish(commit=False)
            raise
        tx.finish(commit=True)
        self.done.add(f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}")
        return result

    def read(self, schema, sql, params=None):
        with self.pool(schema).connection() as conn:
            rows = conn.execute(sql, params).fetchall()
            conn.rollback()
            return rows

    def now(self):
        return datetime.combine(self.day, time(10, 0), clock.zone())

    def close(self):
        for p in self.pools.values():
            p.close()


def _reset(dsn, tables):
    """Empty the tables for the next history. DELETE, not TRUNCATE: truncating seventy tables takes
    seconds, deleting a few hundred rows milliseconds; foreign keys are not checked meanwhile."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        for table in tables:
            conn.execute(f"DELETE FROM {table}")


@pytest.fixture(scope="module")
def street(base_config, database):
    """The street: every service's tables emptied except the hierarchy, loaded once."""
    cfg = {**base_config, "DATABASE_URL": database}
    tables = [f'"{s}"."{t}"' for s, ts in app_tables(database).items() for t in ts]
    _reset(database, tables)
    s = Street(cfg)
    s.run("registry", load_hierarchy, STREET, today=START)
    s.tables = [t for t in tables if t not in ('"registry"."nodes"', '"registry"."node_changes"')]
    yield s
    s.close()


@pytest.fixture(scope="module")
def district(base_config):
    """The district's aggregator in a database of its own, with the street as its registered child."""
    db = f"{TEST_DB}_district"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    dsn = _dsn(db)
    migrate(dsn, ["aggregator"])
    pool = make_pool(dsn, "aggregator", max_size=1)
    pool.open(wait=True, timeout=30)
    yield {"dsn": dsn, "pool": pool, "tables": [f'"aggregator"."{t}"' for t in app_tables(dsn)["aggregator"]],
           "source": {"service": "aggregator", "level": "district", "node_code": DISTRICT,
                      "instance": f"district-{DISTRICT}"}}
    pool.close()
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def id_number(birth, seq):
    first17 = "310110" + birth + f"{seq:03d}"
    return first17 + check_character(first17)


# -- the histories --------------------------------------------------------------------------------

back = st.integers(0, 20)        # how many days before the day it is recorded a change took effect
person = st.integers(0, 11)
community = st.integers(0, len(COMMUNITIES) - 1)
matter = st.integers(0, 7)
org = st.integers(0, 3)
TAG_SET = st.sets(st.sampled_from(TAGS), max_size=2)
ARGUMENTS = {
    "days": st.tuples(st.integers(1, 4)),
    "register": st.tuples(community, st.sampled_from(BIRTHS), TAG_SET, st.sampled_from(("registered", "floating")),
                          st.integers(0, 60)),
    "move": st.tuples(person, community, back),
    "leave": st.tuples(person, back),
    "die": st.tuples(person, back),
    "correct": st.tuples(person, TAG_SET, st.sampled_from(("registered", "permanent", "floating"))),
    "come_back": st.tuples(person, community),
    "raise": st.tuples(community, person),
    "merge": st.tuples(matter, matter),
    "answer": st.tuples(matter),
    "settle": st.tuples(matter),
    "rate": st.tuples(matter, st.integers(1, 5)),
    "party_register": st.tuples(person, back),
    "party_report": st.tuples(person, back),
    "party_withdraw": st.tuples(person, back),
    "org_found": st.tuples(person, st.integers(0, 40)),
    "org_join": st.tuples(org, person, back),
    "org_status": st.tuples(org, st.sampled_from(("active", "suspended", "dissolved")), back),
    "org_lead": st.tuples(org, person),
    "org_leave": st.tuples(org, person, back),
    "serve": st.tuples(person, st.integers(1, 12), back),
    "reverse": st.tuples(st.integers(0, 15)),
    "redeem": st.tuples(person, st.integers(1, 3), st.booleans()),
}
# Drawn by kind first, so every kind is as likely in a long history as in a short one; days,
# registrations and matters come more often, as the other operations need people and matters.
OFTEN = ("days", "register", "raise", "merge", "settle", "rate", "party_register", "party_report", "org_found",
         "org_join", "serve", "redeem")
KINDS = list(OFTEN) * 2 + [k for k in ARGUMENTS if k not in OFTEN]
OPERATION = st.sampled_from(KINDS).flatmap(lambda kind: ARGUMENTS[kind].map(lambda args: (kind, *args)))


class History:
    """Plays operations against the street and keeps what the test needs to address things by index."""

    def __init__(self, street):
        self.s = street
        self.people = []          # [(resident id, birth, seq)] in registration order
        self.matters = []
        self.orgs = []
        self.records = []         # service records posted, to reverse by index
        self.seq = 0
        self.snapshots = {}       # day -> the register's own stocks at the end of that day
        self.seen = 0             # the registry's outbox, read up to here by the points service
        s = street
        s.run("points", catalogue.create_category, {
            "code": "security_patrol", "name": "平安巡逻", "unit": "hour", "points_per_unit": 10, "daily_cap": 40,
            "yearly_cap": 300, "verifier_roles": ["community_worker"], "valid_from": (START - timedelta(30)).isoformat()},
              CALLER, today=START - timedelta(30))
        self.reward = s.run("points", catalogue.create_reward, {"name": "环保购物袋", "kind": "material",
                                                               "points_cost": 20, "stock": 1000}, CALLER)["id"]

    def active(self):
        return {r["id"] for r in self.s.read("registry", "SELECT id FROM residents WHERE status = 'active'")}

    def left(self):
        return {r["id"] for r in self.s.read("registry", "SELECT id FROM residents WHERE status = 'left'")}

    def person(self, resident_id, caller):
        """The registry's answer on a resident, which the consultation service asks by RPC."""
        with on_pool(self.s.pool("registry"), None) as tx:
            return holders.account_holder(tx, self.s.vault, "person", resident_id,
                                          {**caller, "actor": "service:consultation"})

    def holders(self, kind, ref_id, caller):
        """The registry's answer on an account holder, which the points service asks by RPC."""
        with on_pool(self.s.pool("registry"), None) as tx:
            return holders.account_holder(tx, self.s.vault, kind, ref_id, caller)

    def follow_registry(self):
        """What the points service's handlers do with the registry's events since the last call."""
        s = self.s
        events = s.read("registry", "SELECT id, routing_key, body FROM outbox WHERE exchange = 'registry.events' "
                                    "AND id > %s ORDER BY id", (self.seen,))
        for e in events:
            kind, payload = e["routing_key"], e["body"]["payload"]
            if kind == "resident_moved":
                s.run("points", points_accounts.refresh, self.holders, payload["id"], STREET)
            elif kind == "party_member_reported":
                s.run("points", points_accounts.open_for_party_member, self.holders, payload["resident_id"], STREET)
            elif kind in ("party_member_placed", "party_member_withdrawn", "party_member_relocated",
                          "organization_member_joined", "organization_member_left"):
                s.run("points", points_accounts.refresh, self.holders, payload["resident_id"], STREET)
            elif kind == "resident_left":
                s.run("points", handover.hand_over, self.holders, payload["id"], STREET, s.signer, "居民迁出本街道")
            elif kind == "resident_died":
                s.run("points", points_accounts.freeze, payload["id"], "居民去世")
        if events:
            self.seen = events[-1]["id"]

    def pick(self, items, n):
        return items[n % len(items)] if items else None

    def play(self, op):
        self.play_one(op)
        self.follow_registry()

    def play_one(self, op):
        s, kind = self.s, op[0]
        today = s.day
        if kind == "days":
            for _ in range(op[1]):
                self.snapshots[s.day] = own_stocks(s, s.day)
                s.day += timedelta(days=1)
            clock_at(s.day)
            return
        if kind == "register":
            _, c, birth, tags, rtype, moved_back = op
            self.seq += 1
            moved_in = max(today - timedelta(days=moved_back), date(int(birth[:4]), int(birth[4:6]), int(birth[6:])))
            r = s.run("registry", residents.register, s.vault, {
                "name": "测试居民", "id_number": id_number(birth, self.seq), "community_code": COMMUNITIES[c],
                "residence_type": rtype, "tags": sorted(tags), "moved_in": moved_in.isoformat()}, CALLER, today=today)
            if r:
                self.people.append((r["id"], birth, self.seq))
            return
        # People are picked among those the operation can apply to, so fewer operations are refused.
        active = [p for p in self.people if p[0] in self.active()]
        who = self.pick([p for p in self.people if p not in active and p[0] in self.left()] if kind == "come_back"
                        else active, op[1]) if kind in ("move", "leave", "die", "correct", "come_back",
                                                        "party_register", "party_report", "party_withdraw",
                                                        "serve") else None
        if kind in ("party_report", "party_withdraw"):
            members = {r["resident_id"] for r in s.read("registry", "SELECT resident_id FROM party_members")}
            who = self.pick([p for p in active if p[0] in members], op[1])
        if kind == "move" and who:
            s.run("registry", residents.move, s.vault, who[0], {
                "community_code": COMMUNITIES[op[2]], "effective": (today - timedelta(days=op[3])).isoformat()},
                CALLER, today=today)
            # What the registry's own handler of resident_moved does.
            s.run("registry", party.residence_moved, who[0], "registry:resident_moved")
        elif kind == "leave" and who:
            s.run("registry", residents.leave, s.vault, who[0],
                  {"effective": (today - timedelta(days=op[2])).isoformat()}, CALLER, today=today)
        elif kind == "die" and who:
            s.run("registry", residents.die, s.vault, who[0],
                  {"date_of_death": (today - timedelta(days=op[2])).isoformat()}, CALLER, today=today)
        elif kind == "correct" and who:
            s.run("registry", residents.update, s.vault, who[0],
                  {"tags": sorted(op[2]), "residence_type": op[3]}, CALLER, today=today)
        elif kind == "come_back" and who:
            r = s.run("registry", residents.register, s.vault, {
                "name": "测试居民", "id_number": id_number(who[1], who[2]), "community_code": COMMUNITIES[op[2]],
                "residence_type": "registered", "tags": []}, CALLER, today=today)
            if r:
                self.people.append((r["id"], who[1], who[2]))
        elif kind == "raise":
            raiser = self.pick(active, op[2])   # anonymous while nobody is on the register
            r = s.run("consultation", matters.raise_matter, self.person, {
                "community_code": COMMUNITIES[op[1]], "category": "parking", "channel": "hotline",
                "title": "小区夜间停车难", "description": "晚上车辆乱停，消防通道被占", "confirm_new": True,
                "raiser_resident_id": raiser[0] if raiser else None}, CALLER, s.now())
            if r:
                self.matters.append(r["id"])
        elif kind == "answer" and self.matters:
            s.run("consultation", matters.screen, self.pick(self.matters, op[1]), {"outcome": "answer",
                                                                                  "note": "已答复"}, CALLER, s.now())
        elif kind == "rate" and self.matters:
            # The raiser rates the result; their rating settles an answered matter.
            rateable = s.read("consultation", "SELECT id, raiser_resident_id FROM matters WHERE raiser_resident_id "
                                              "IS NOT NULL AND status IN ('answered', 'referred', 'published', "
                                              "'settled') ORDER BY id")
            m = self.pick(rateable, op[1])
            if m:
                s.run("consultation", matters.rate, self.person, m["id"], {"resident_id": m["raiser_resident_id"],
                                                                           "score": op[2]}, CALLER, s.now())
        elif kind == "merge" and self.matters:
            # A repeat and one of the other open matters of its community, if there is one.
            m = self.pick(self.matters, op[1])
            others = [r["id"] for r in s.read("consultation", "SELECT o.id FROM matters m JOIN matters o ON "
                                              "o.community_code = m.community_code AND o.id <> m.id WHERE m.id = %s "
                                              "AND o.status NOT IN ('settled', 'rejected', 'merged') ORDER BY o.id",
                                              (m,))]
            if others:
                s.run("consultation", matters.screen, m,
                      {"outcome": "merge", "duplicate_of": self.pick(others, op[2])}, CALLER, s.now())
        elif kind == "settle" and self.matters:
            m = self.pick(self.matters, op[1])
            s.run("consultation", matters.screen, m, {"outcome": "answer", "note": "已答复"}, CALLER, s.now())
            s.run("consultation", matters.settle, m, {}, CALLER, s.now())
        elif kind == "party_register" and who:
            s.run("registry", party.register, {
                "resident_id": who[0], "category": "retired", "membership_org": "上海电气集团党委",
                "joined_party": "2009-07-01"}, CALLER, today=today)
        elif kind == "party_report" and who:
            s.run("registry", party.report, who[0], {
                "reported_on": (today - timedelta(days=op[2])).isoformat(), "posts": ["volunteer"]},
                CALLER, today=today)
        elif kind == "party_withdraw" and who:
            s.run("registry", party.withdraw, who[0], {
                "effective": (today - timedelta(days=op[2])).isoformat(), "reason": "组织关系转出"},
                CALLER, today=today)
        elif kind == "org_found":
            leader = self.pick(active, op[1])
            if leader is None:
                return
            row = s.read("registry", "SELECT community_code FROM residents WHERE id = %s", (leader[0],))[0]
            r = s.run("registry", organizations.register, {
                "name": f"志愿服务队{len(self.orgs) + 1}", "category": "volunteer_team",
                "subcategory": "security_patrol", "community_code": row["community_code"],
                "leader_resident_id": leader[0], "activities": ["public_safety"],
                "founded_on": (today - timedelta(days=op[2])).isoformat(), "status": "active"}, CALLER, today=today)
            if r:
                self.orgs.append(r["id"])
        elif kind == "org_join" and self.orgs:
            o = self.pick(self.orgs, op[1])
            members = {r["resident_id"] for r in s.read("registry", "SELECT resident_id FROM organization_members "
                                                                    "WHERE organization_id = %s AND left_on IS NULL",
                                                        (o,))}
            joining = self.pick([p for p in active if p[0] not in members], op[2])
            if joining:
                s.run("registry", organizations.join, o, {
                    "resident_id": joining[0], "joined_on": (today - timedelta(days=op[3])).isoformat()},
                    CALLER, today=today)
        elif kind == "org_lead" and self.orgs and active:
            # A new leader: the old one stays a member, a member becomes leader or an outsider joins as one.
            s.run("registry", organizations.update, self.pick(self.orgs, op[1]),
                  {"leader_resident_id": self.pick(active, op[2])[0]}, CALLER, today=today)
        elif kind == "org_leave" and self.orgs and self.people:
            s.run("registry", organizations.leave, self.pick(self.orgs, op[1]), self.pick(self.people, op[2])[0],
                  {"left_on": (today - timedelta(days=op[3])).isoformat()}, CALLER, today=today)
        elif kind == "serve" and who:
            # Half-hours of service, some days back, logged and verified (posted) at once; over the
            # daily cap the posting is cut down, to nothing at worst.
            served = datetime.combine(today - timedelta(days=op[3]), time(9, 0), clock.zone())
            r = s.run("points", records.create, self.holders, {
                "resident_id": who[0], "category_code": "security_patrol", "served_at": served.isoformat(),
                "hours": str(op[2] / 2), "description": "夜间巡逻"}, CALLER, 30, s.now())
            if r and s.run("points", records.verify, r["id"], {}, CALLER, s.now()):
                self.records.append(r["id"])
        elif kind == "reverse" and self.records:
            s.run("points", records.reverse, self.pick(self.records, op[1]), {"reason": "重复登记"}, CALLER)
        elif kind == "redeem":
            # Among the accounts with points to spend, so that most requests can be met.
            account = self.pick(s.read("points", "SELECT id FROM accounts WHERE kind = 'person' AND status = 'active' "
                                                 "AND balance >= 20 ORDER BY id"), op[1])
            if account:
                r = s.run("points", redemptions.request, {"account_id": account["id"], "reward_id": self.reward,
                                                          "quantity": op[2]}, CALLER, STREET)
                if r:
                    s.run("points", redemptions.fulfil if op[3] else redemptions.cancel, r["id"],
                          {} if op[3] else {"reason": "居民放弃"}, CALLER, STREET)
        elif kind == "org_status" and self.orgs:
            s.run("registry", organizations.change_status, self.pick(self.orgs, op[1]), {
                "status": op[2], "effective": (today - timedelta(days=op[3])).isoformat()}, CALLER, today=today)


def clock_at(day):
    """Services that ask the clock (rather than taking `today`) see the simulated day."""
    moment = datetime.combine(day, time(10, 0), clock.zone())
    clock.now = lambda: moment
    clock.today = lambda: day


# -- the services' own figures ----------------------------------------------------------------------

def own_stocks(s, day):
    """The register's own stocks on `day`, per node (each community, the street, the district):
    {(node, metric, dim, value): n}, the age band by the statistical rule the facts use."""
    out = {}

    def add(code, metric, dim, value, n=1):
        for node in (code, STREET, DISTRICT):
            key = (node, metric, dim, value)
            out[key] = out.get(key, 0) + n

    for r in s.read("registry", "SELECT community_code, birth_date, residence_type, tags FROM residents "
                                "WHERE status = 'active'"):
        add(r["community_code"], "residents", "", "")
        add(r["community_code"], "residents", "age_band", facts.age_band_of(r["birth_date"].year, day))
        add(r["community_code"], "residents", "residence_type", r["residence_type"])
        for t in r["tags"]:
            add(r["community_code"], "residents", "tags", t)
    for r in s.read("registry", "SELECT community_code, report_status FROM party_members "
                                "WHERE report_status <> 'withdrawn'"):
        add(r["community_code"], "party_members", "", "")
        add(r["community_code"], "party_members", "report_status", r["report_status"])
    for r in s.read("registry", "SELECT community_code, status FROM organizations"):
        add(r["community_code"], "organizations", "", "")
        add(r["community_code"], "organizations", "status", r["status"])
    for r in s.read("registry", "SELECT o.community_code, m.role FROM organization_members m "
                                "JOIN organizations o ON o.id = m.organization_id WHERE m.left_on IS NULL"):
        add(r["community_code"], "organization_members", "", "")
        add(r["community_code"], "organization_members", "role", r["role"])
    return out


def points_figures(s, year):
    """The points service's own figures for `year`, per node: the annual evaluation's points and hours
    (postings that stand, each person counted in the community they live in) and the points of
    fulfilled redemptions; {(node, metric, dim, value): total} with dim "" or "member_category"."""
    out = {}

    def add(code, metric, category, n):
        for node in (code, STREET, DISTRICT):
            for key in ((node, metric, "", ""), (node, metric, "member_category", category)):
                out[key] = out.get(key, 0.0) + float(n)

    with on_pool(s.pool("points"), None) as tx:
        for r in evaluation.standings(tx, year, ""):
            add(r["community_code"], "points_posted", r["member_category"], r["points"])
            add(r["community_code"], "service_hours", r["member_category"], r["hours"])
    for r in s.read("points", "SELECT a.community_code, a.member_category, d.points FROM redemptions d JOIN accounts a "
                              "ON a.id = d.account_id WHERE d.status = 'fulfilled' AND d.closed_at >= %s "
                              "AND d.closed_at < %s", (datetime(year, 1, 1, tzinfo=clock.zone()),
                                                       datetime(year + 1, 1, 1, tzinfo=clock.zone()))):
        add(r["community_code"], "points_redeemed", r["member_category"], r["points"])
    return out


# -- the levels above ----------------------------------------------------------------------------------

def fact_batches(s):
    """Every signed fact batch the street's services wrote to their outboxes, in order."""
    out = []
    for schema in ("registry", "consultation", "points", "notification"):
        out += [r["body"] for r in s.read(schema, "SELECT body FROM outbox WHERE exchange = %s ORDER BY id",
                                          (facts.FACTS.name,))]
    return out


def roll_up(s, district, batches):
    with on_pool(s.pool("aggregator"), envelope.source_from_config("aggregator", s.cfg), s.signer) as tx:
        for b in batches:
            assert "rejected" not in ingest.accept(tx, b, STREET, s.signer.public_key, "street", DLQ), b
    with on_pool(district["pool"], district["source"], DISTRICT_KEY) as tx:
        tx.execute(agg_store.ADD_CHILD, (STREET, s.signer.public_key, None))
        for b in batches:
            assert "rejected" not in ingest.accept(tx, b, DISTRICT, DISTRICT_KEY.public_key, "district", DLQ,
                                                   DISTRICT_KEY), b


def stocks_by_day(pool, first, last):
    """Every stock of the roll-ups on every day from the first with a change (or `first`) to `last`:
    {day: {(node, metric, dim, value): n}}."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT node, period_start, metric, dim, value, n FROM rollups WHERE period = 'day' "
                            "AND metric = ANY(%s) ORDER BY period_start", (list(STOCKS),)).fetchall()
        conn.rollback()
    running, out, i = {}, {}, 0
    day = min([first] + [r["period_start"] for r in rows])
    while day <= last:
        while i < len(rows) and rows[i]["period_start"] == day:
            r = rows[i]
            key = (r["node"], r["metric"], r["dim"], r["value"])
            running[key] = running.get(key, 0) + int(r["n"])
            i += 1
        out[day] = dict(running)
        day += timedelta(days=1)
    return out


def by_band(pool, source, node, first, last):
    """The aggregator's own daily series of residents by age band (figures.rollups, group dim:age_band)."""
    with on_pool(pool, source) as tx:
        result = agg_figures.rollups(tx, {"metric": "residents", "node": node, "period": "day",
                                          "start": first.isoformat(), "end": last.isoformat(),
                                          "group": "dim:age_band"},
                                     {"actor": "test", "scope": node[:6], "role": "street_admin"}, today=last)
    return {(s["key"], date.fromisoformat(p["period_start"])): p["n"] for s in result["series"] for p in s["points"]}


def headline(pool, source, node, day):
    with on_pool(pool, source) as tx:
        return agg_figures.headline_figures(tx, {"node": node}, {"actor": "test", "scope": node[:6],
                                                                 "role": "street_admin"}, today=day)


# -- the property ---------------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(OPERATION, min_size=20, max_size=60))
def test_every_level_reports_the_same_figures_every_day(street, district, operations):
    _reset(street.cfg["DATABASE_URL"], street.tables)
    _reset(district["dsn"], district["tables"])
    street.day, street.done = START, set()
    saved = clock.now, clock.today
    clock_at(START)
    try:
        h = History(street)
        for op in operations:
            h.play(op)
        for name in sorted(street.done):
            event(name)
        event(f"{len(operations)//10*10}+ operations")
        for kind in sorted({op[0] for op in operations}):
            event(f"tried {kind}")
        last = street.day
        h.snapshots[last] = own_stocks(street, last)
        roll_up(street, district, fact_batches(street))
        check(street, district, h, last)
    finally:
        clock.now, clock.today = saved


def _nonzero(cells):
    return {k: v for k, v in cells.items() if v}


def check(s, district, h, last):
    levels = {"street": s.pool("aggregator"), "district": district["pool"]}
    # Each level reads as its aggregator does, knowing its own node.
    sources = {"street": envelope.source_from_config("aggregator", s.cfg), "district": district["source"]}
    # Every stock, every day, at every node the level holds: what the register held that day.
    for level, pool in levels.items():
        daily = stocks_by_day(pool, START, last)
        for day, cells in sorted(daily.items()):
            negative = {k: v for k, v in cells.items() if v < 0}
            assert not negative, f"{level} stocks below zero on {day}: {negative}"
        for day in sorted(h.snapshots):
            got = daily.get(day, {})
            want = {k: v for k, v in h.snapshots[day].items() if k[2] in COMPARED
                    and (level == "district" or k[0] != DISTRICT)}
            got = {k: v for k, v in got.items() if k[2] in COMPARED}
            assert _nonzero(got) == _nonzero(want), f"{level} on {day}"
        # Age bands, as the aggregator reports them for each day: from the register that day.
        for node in (STREET, DISTRICT) if level == "district" else (STREET,):
            series = by_band(pool, sources[level], node, START, last)
            for day in sorted(h.snapshots):
                want = {k[3]: v for k, v in h.snapshots[day].items() if k[0] == node and k[1] == "residents"
                        and k[2] == "age_band" and v}
                got = {band: n for (band, d), n in series.items() if d == day and n}
                assert got == want, f"{level} {node} residents by age band on {day}"
    # The services' own headline figures against both levels' headlines, per community and in total.
    now = datetime.combine(last, time(23, 0), clock.zone())
    with on_pool(s.pool("consultation"), None) as tx:
        own_matters = consultation_figures.figures(tx, {"since": date(last.year, 1, 1).isoformat(),
                                                        "until": (last + timedelta(days=1)).isoformat()},
                                                   CALLER, now)
    with on_pool(s.pool("registry"), None) as tx:
        own_party = party.report_rate(tx, {"under": STREET}, CALLER)
    own_points = points_figures(s, last.year)
    # The service's figures per community (its rows are per community and category: one category here).
    per_community = {row["community_code"]: row for row in own_matters["rows"]}
    party_rows = {r["community_code"]: r for r in own_party["communities"]}
    for level, pool in levels.items():
        for node in COMMUNITIES + (STREET,) + ((DISTRICT,) if level == "district" else ()):
            got = headline(pool, sources[level], node, last)
            if len(node) == 12:
                m = per_community.get(node, {"matters": 0, "settled": 0, "settlement_rate": None,
                                             "on_time_rate": None, "median_days_to_settle": None,
                                             "satisfaction_rate": None})
                p = party_rows.get(node, {"members": 0, "reported": 0, "rate": None})
            else:
                m, p = own_matters["total"], own_party["total"]
            assert (got["matters_raised"], got["matters_settled"]) == (m["matters"], m["settled"]), \
                f"{level} {node} matters"
            assert (got["settlement_rate"], got["on_time_rate"], got["median_days_to_settle"],
                    got["satisfaction_rate"]) == (m["settlement_rate"], m["on_time_rate"],
                                                  m["median_days_to_settle"], m["satisfaction_rate"]), \
                f"{level} {node} rates"
            assert (got["party_members"], got["party_members_reported"], got["report_rate"]) == \
                (p["members"], p["reported"], p["rate"]), f"{level} {node} party"
            want_bands = {k[3]: v for k, v in h.snapshots[last].items() if k[0] == node and k[1] == "residents"
                          and k[2] == "age_band" and v}
            assert {b: n for b, n in got["residents_by_age_band"].items() if n} == want_bands, \
                f"{level} {node} residents by age band"
            want = {k[1]: v for k, v in own_points.items() if k[0] == node and k[2] == ""}
            assert (got["points_posted"], got["service_hours"], got["points_redeemed"]) == \
                (want.get("points_posted", 0.0), want.get("service_hours", 0.0), want.get("points_redeemed", 0.0)), \
                f"{level} {node} points"
        # Points and hours by member category, as the evaluation ranks people, in the year's cells.
        with pool.connection() as conn:
            cells = {(r["node"], r["metric"], r["value"]): float(r["total"]) for r in conn.execute(
                "SELECT node, metric, value, total FROM rollups WHERE period = 'year' AND period_start = %s "
                "AND metric = ANY(%s) AND dim = 'member_category'",
                (date(last.year, 1, 1), ["points_posted", "service_hours", "points_redeemed"]))}
            conn.rollback()
        want = {(k[0], k[1], k[3]): v for k, v in own_points.items() if k[2] == "member_category"
                and (level == "district" or k[0] != DISTRICT)}
        assert _nonzero(cells) == _nonzero(want), f"{level} points by member category"
