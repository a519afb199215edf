"""A directive's reach and reads that agree at every level, proven by generated histories (issue 16, item 4).

Hypothesis generates sequences of operations on one street: residents registered (with or
without a phone), moved between communities, leaving and dying, their phone changed or removed
on the register; the notification service keeping its subscribers from the registry's events as
its handlers do, and fetching the register's phones when its timer asks; addresses given or
removed (SMS, WeChat, e-mail); directives from above arriving (for the district or the city,
which reach the whole street, for the street, for one community, for another street, which is
refused, and the same directive again); the sender's passes with providers that accept, refuse,
do not answer or are down; providers' receipts (delivered, failed, read), some faster than the
sender's commit; residents reading their inbox; broadcasts cancelled and closed; acknowledgements
reported at random points; days passing, across a new year. The operations run through the
services' own use cases on real PostgreSQL; an operation the service refuses changes nothing and
the history goes on.

Each report's signed fact batches are taken from the outboxes as the relay would publish them and
fed to the street's aggregator and to a district's (its own database, the street its registered
child), as federation would deliver them. The test checks, for every directive, community, the
street and the district:

- after every report, the street's own figures (broadcasts.rollup: people targeted, reached and
  who read it, per community and in total) equal both levels' directive_figures, and none of
  them is negative;
- at the end, after a last report, the same, and for every day of the period the roll-ups'
  running sums equal what the street reported by the end of that day, never below zero.

Real: PostgreSQL (the street's schemas in the test database, the district's aggregator in a
database of its own), Ed25519 signatures, the sender and receipts' HMAC signatures. No broker:
nothing here is about transport; the providers are in-process stand-ins (no sockets). The
database's clock is not simulated: deliveries fall due and broadcasts age by the real clock, so a
history never outlives the seven days a broadcast is reported for (store.DIRECTIVE_BROADCASTS).
"""
import json
import time as wall
from datetime import date, datetime, timezone, timedelta

from hypothesis import HealthCheck, event, given, settings, strategies as st

from services.aggregator import figures as agg_figures
from services.notification import broadcasts, channels, notices, subscribers
from services.notification.sender import Sender
from services.registry import holders, nodes, residents
from shared import clock
from shared.db import on_pool
from tests.integration.test_figures_agree import (  # noqa: F401 (street, district: the fixtures)
    CALLER, COMMUNITIES, DISTRICT, STREET, _reset, clock_at, district, fact_batches, id_number, roll_up, street)

START = date(2026, 12, 20)   # histories of more than twelve days cross a new year
MEASURES = broadcasts.MEASURES
# Directive areas: the city and the district (the whole street), the street, one community, another street.
PREFIXES = ("3101", DISTRICT, STREET) + COMMUNITIES + ("310110013",)
CHANNELS = ("inbox", "sms", "wechat", "email")    # no provider is configured for e-mail: it fails
MODES = ("ok", "ok", "ok", "refuse", "silent", "down")   # a provider's answer to a pass, mostly taken
RECEIPT_SECRET = "r" * 32
TOUCHED = ('"registry"', '"notification"', '"aggregator"')   # the schemas a history writes to
LEVEL_CALLERS = {"street": {"actor": "test", "scope": STREET, "role": "street_admin"},
                 "district": {"actor": "test", "scope": DISTRICT, "role": "street_admin"}}


class Provider:
    """An SMS or WeChat provider in process: its answer for the next pass is set by the history."""

    def __init__(self, name):
        self.name, self.mode, self.n = name, "ok", 0

    def next_ref(self, k=1):
        return f"{self.name}-{self.n + k}"

    def send(self, messages):
        if self.mode == "down":
            raise channels.ProviderDown(f"{self.name} is down")
        out = []
        for m in messages:
            if self.mode == "ok":
                self.n += 1
                out.append(channels.Outcome(m.ref, True, provider_ref=f"{self.name}-{self.n}"))
            else:
                out.append(channels.Outcome(m.ref, False, error="rejected" if self.mode == "refuse" else "timeout",
                                            permanent=self.mode == "refuse"))
        return out


# -- the histories --------------------------------------------------------------------------------

person = st.integers(0, 11)
community = st.integers(0, len(COMMUNITIES) - 1)
back = st.integers(0, 5)
pick = st.integers(0, 30)
ARGUMENTS = {
    "days": st.tuples(st.integers(1, 6)),
    "register": st.tuples(community, st.booleans()),
    "move": st.tuples(person, community, back),
    "leave": st.tuples(person, back),
    "die": st.tuples(person, back),
    "phone": st.tuples(person, st.one_of(st.none(), st.integers(0, 99))),
    "sync_phones": st.tuples(),
    "address": st.tuples(person, st.sampled_from(("sms", "wechat", "email")), st.booleans()),
    "directive": st.tuples(st.sampled_from(PREFIXES), st.sets(st.sampled_from(CHANNELS), min_size=1),
                           st.one_of(st.none(), pick)),
    "send": st.tuples(st.sampled_from(MODES), st.sampled_from(MODES)),
    "receipt": st.tuples(pick, st.sampled_from(("delivered", "failed", "read")), st.booleans()),
    "read": st.tuples(pick),
    "cancel": st.tuples(pick),
    "close": st.tuples(),
    "report": st.tuples(),
}
# Drawn by kind first, so every kind is as likely in a long history as in a short one; people,
# directives, passes of the sender and reads come more often, as the other operations need them.
OFTEN = {"register": 3, "directive": 3, "send": 4, "read": 3, "receipt": 2, "report": 2, "days": 2}
KINDS = [k for k in ARGUMENTS for _ in range(OFTEN.get(k, 1))]
OPERATION = st.sampled_from(KINDS).flatmap(lambda kind: ARGUMENTS[kind].map(lambda args: (kind, *args)))
# The people already on the register when the history starts, some with a phone there, some with
# addresses of their own: (community, registry phone, channels they gave).
PEOPLE = st.lists(st.tuples(community, st.booleans(), st.sets(st.sampled_from(("sms", "wechat", "email")))),
                  min_size=2, max_size=8)


class History:
    """Plays operations against the street and keeps what the test needs to address things by index."""

    def __init__(self, street, district):
        self.s, self.district = street, district
        self.people = []          # resident ids in registration order
        self.seq = 0
        self.directives = []      # every directive that arrived (refused ones too)
        self.events_after = 0     # the registry's events the notification service has taken
        self.batches = set()      # the fact batches the aggregators have taken
        self.reports = []         # [(day, the street's own figures just after that day's report)]
        self.played = []          # the operations so far, for a failure's message
        self.providers = {"sms": Provider("alpha"), "wechat": Provider("wx")}
        self.sender = Sender({ch: [p] for ch, p in self.providers.items()}, street.vault, max_attempts=3,
                             retry_base=0.01, rng=lambda: 0.0)
        self.receipt_config = {ch: [{"name": p.name, "token": f"{p.name}-token", "receipt_secret": RECEIPT_SECRET}]
                               for ch, p in self.providers.items()}

    def registry(self, fn, *args, **kwargs):
        """A registry use case, then the registry's events as the notification service takes them."""
        result = self.s.run("registry", fn, *args, **kwargs)
        rows = self.s.read("registry", "SELECT id, body FROM outbox WHERE exchange = 'registry.events' AND id > %s "
                                       "ORDER BY id", (self.events_after,))
        for r in rows:
            if r["body"]["type"].startswith("resident_"):
                self.s.run("notification", on_resident, r["body"])
            self.events_after = r["id"]
        return result

    def nodes(self, code):
        """The registry's get_node, which the notification service asks by RPC."""
        with on_pool(self.s.pool("registry"), None) as tx:
            return nodes.get(tx, code)

    def contacts(self, ids):
        with on_pool(self.s.pool("registry"), None) as tx:
            return holders.contacts(tx, self.s.vault, ids)

    def active(self):
        return {r["id"] for r in self.s.read("registry", "SELECT id FROM residents WHERE status = 'active'")}

    @staticmethod
    def pick(items, n):
        return items[n % len(items)] if items else None

    def populate(self, people):
        for i, (c, phone, reachable_by) in enumerate(people):
            self.play(("register", c, phone))
            for channel in sorted(reachable_by):
                self.play(("address", i, channel, True))
        self.play(("sync_phones",))

    def play(self, op):
        self.played.append(op)
        s, kind = self.s, op[0]
        today = s.day
        if kind == "days":
            s.day += timedelta(days=op[1])
            clock_at(s.day)
            return
        if kind == "register":
            self.seq += 1
            r = self.registry(residents.register, s.vault, {
                "name": "测试居民", "id_number": id_number("19660510", self.seq), "community_code": COMMUNITIES[op[1]],
                "residence_type": "registered", "tags": [], "phone": f"138{self.seq:08d}" if op[2] else None},
                CALLER, today=today)
            if r:
                self.people.append(r["id"])
            return
        active = [p for p in self.people if p in self.active()] if kind in ("move", "leave", "die", "phone") else []
        if kind == "move" and active:
            self.registry(residents.move, s.vault, self.pick(active, op[1]), {
                "community_code": COMMUNITIES[op[2]], "effective": (today - timedelta(days=op[3])).isoformat()},
                CALLER, today=today)
        elif kind == "leave" and active:
            self.registry(residents.leave, s.vault, self.pick(active, op[1]),
                          {"effective": (today - timedelta(days=op[2])).isoformat()}, CALLER, today=today)
        elif kind == "die" and active:
            self.registry(residents.die, s.vault, self.pick(active, op[1]),
                          {"date_of_death": (today - timedelta(days=op[2])).isoformat()}, CALLER, today=today)
        elif kind == "phone" and active:
            self.registry(residents.update, s.vault, self.pick(active, op[1]),
                          {"phone": None if op[2] is None else f"139{op[2]:08d}"}, CALLER, today=today)
        elif kind == "sync_phones":
            # The service's sync_phones timer: the register's phones become SMS addresses.
            s.run("notification", subscribers.sync_phones, s.vault, self.contacts)
        elif kind == "address" and self.people:
            rid, channel = self.pick(self.people, op[1]), op[2]
            if op[3]:
                address = {"sms": f"137{rid:08d}", "wechat": f"openid-{rid:010d}", "email": f"r{rid}@example.cn"}
                s.run("notification", subscribers.set_channel, s.vault, rid, {"channel": channel,
                                                                               "address": address[channel]}, CALLER)
            else:
                s.run("notification", subscribers.remove_channel, s.vault, rid, channel, CALLER)
        elif kind == "directive":
            self.directive(*op[1:])
        elif kind == "send":
            self.send(*op[1:])
        elif kind == "receipt":
            self.receipt(*op[1:])
        elif kind == "read":
            inbox = s.read("notification", "SELECT id, resident_id FROM deliveries WHERE channel = 'inbox' "
                                           "AND status IN ('delivered', 'read') ORDER BY id")
            d = self.pick(inbox, op[1])
            if d:
                s.run("notification", notices.mark_read, d["resident_id"], d["id"], CALLER)
        elif kind == "cancel":
            b = self.pick(s.read("notification", "SELECT id FROM broadcasts ORDER BY id"), op[1])
            if b:
                s.run("notification", broadcasts.cancel, b["id"], {"reason": "区里已撤回该通知"}, CALLER)
        elif kind == "close":
            s.run("notification", broadcasts.close_finished)
        elif kind == "report":
            self.report()

    def directive(self, prefix, chosen, again):
        """A directive from above, as on_directive hands it to the domain once its signature verified."""
        if again is not None and self.directives:
            d = self.pick(self.directives, again)     # the same directive, delivered again
        else:
            d = {"id": f"{prefix}:broadcast:{len(self.directives) + 1}", "prefix": prefix, "title": "防汛Ⅳ级应急响应",
                 "message": "今夜有暴雨，请低洼地区居民做好防范。", "issued_by": f"{prefix}:应急局",
                 "approved_by": f"{prefix}:应急局值班领导", "channels": sorted(chosen)}
            self.directives.append(d)
        # The database's clock, not the history's: the sender takes what is due by it.
        self.s.run("notification", broadcasts.start_from_directive, self.nodes, d, STREET,
                   datetime.now(timezone.utc), 19)

    def send(self, sms_mode, wechat_mode):
        """One pass of the sender, each provider answering as told. A retry waits 10 ms (rng 0)."""
        self.providers["sms"].mode, self.providers["wechat"].mode = sms_mode, wechat_mode
        if self.s.read("notification", "SELECT 1 FROM deliveries WHERE status = 'queued' AND due_at > now()"):
            wall.sleep(0.02)
        with self.s.pool("notification").connection() as conn, conn.transaction():
            if self.sender.send_once(conn):
                self.s.done.add("sender.send_once")

    def receipt(self, n, status, early):
        """A provider's signed receipt for a message it took, or for the next one (before the sender commits)."""
        sent = self.s.read("notification", "SELECT provider, provider_ref FROM deliveries "
                                           "WHERE provider_ref IS NOT NULL ORDER BY id")
        if early or not sent:
            provider = self.providers[("sms", "wechat")[n % 2]]
            name, ref = provider.name, provider.next_ref(1 + n % 3)
        else:
            d = self.pick(sent, n)
            name, ref = d["provider"], d["provider_ref"]
        body = json.dumps({"receipts": [{"id": ref, "status": status}]})
        self.s.run("notification", notices.receipts, self.receipt_config, name, body,
                   channels.sign(RECEIPT_SECRET, body.encode()))

    def report(self):
        """The street reports; the aggregators take the new batches; every level agrees with the street."""
        self.s.run("notification", broadcasts.report_acknowledgements, self.s.day)
        own = own_figures(self.s)
        self.reports.append((self.s.day, own))
        # The notification service's batches: the register's own facts are test_figures_agree's business.
        new = [b for b in fact_batches(self.s) if b["source"]["service"] == "notification"
               and b["batch_id"] not in self.batches]
        roll_up(self.s, self.district, new)
        self.batches |= {b["batch_id"] for b in new}
        check_levels(self, own, f"after the report on {self.s.day}")


def on_resident(tx, env):
    """What the notification service's handlers of resident_registered, _updated, _moved, _left and
    _died do (NotificationService._resident)."""
    subscribers.apply_resident(tx, env["payload"])
    if subscribers.phone_changed(env) and env["payload"]["status"] == "active":
        subscribers.request_phones(tx, [env["payload"]["id"]])


# -- the figures at each level ----------------------------------------------------------------------

def own_figures(s):
    """The street's own figures of every directive's broadcast (broadcasts.rollup), as
    {(directive, node, measure): n} for each community, the street and the district."""
    out = {}
    rows = s.read("notification", "SELECT directive_id, notice_id FROM broadcasts WHERE directive_id IS NOT NULL "
                                  "AND notice_id IS NOT NULL")
    with on_pool(s.pool("notification"), None) as tx:
        for b in rows:
            r = broadcasts.rollup(tx, b["notice_id"])
            for c in r["communities"]:
                out.update({(b["directive_id"], c["community_code"], m): c[m] for m in MEASURES})
            out.update({(b["directive_id"], node, m): r["total"][m] for node in (STREET, DISTRICT) for m in MEASURES})
    return out


def level_figures(pool, level, directive_ids):
    """directive_figures at the street's or the district's aggregator, in the same shape."""
    root = STREET if level == "street" else DISTRICT
    out = {}
    with on_pool(pool, None) as tx:
        for d in directive_ids:
            got = agg_figures.directive_figures(tx, d, LEVEL_CALLERS[level], root=root)
            rows = [(got["node"], got["total"])] + [(r["street_code"], r) for r in got["streets"]] + \
                [(r["community_code"], r) for r in got["communities"]]
            for node, figures in rows:
                for m in MEASURES:
                    assert figures[m] is not None, f"{level} hides {d} {node} {m}"
                    key = (d, node, m)
                    assert out.get(key, figures[m]) == figures[m], f"{level} says two things of {key}"
                    out[key] = figures[m]
    return out


def _nonzero(cells):
    return {k: v for k, v in cells.items() if v}


def check_levels(h, own, when):
    negative = {k: v for k, v in own.items() if v < 0}
    assert not negative, f"the street's own figures below zero {when}: {negative}"
    ids = sorted({d["id"] for d in h.directives})
    for level, pool in (("street", h.s.pool("aggregator")), ("district", h.district["pool"])):
        got = level_figures(pool, level, ids)
        negative = {k: v for k, v in got.items() if v < 0}
        assert not negative, f"{level} figures below zero {when}: {negative}"
        want = {k: v for k, v in own.items() if level == "district" or k[1] != DISTRICT}
        assert _nonzero(got) == _nonzero(want), f"{level} {when}, after {h.played}"


def check_days(h, pool, level, first, last):
    """Every day, the roll-ups' running sums at each node equal what the street had reported by then."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT node, period_start, metric, value, n FROM rollups WHERE period = 'day' "
                            "AND dim = 'directive' ORDER BY period_start").fetchall()
        conn.rollback()
    running, i, reported = {}, 0, {}
    day = min([first] + [r["period_start"] for r in rows])
    reports = list(h.reports)
    while day <= last:
        while i < len(rows) and rows[i]["period_start"] == day:
            r = rows[i]
            key = (r["value"], r["node"], r["metric"].removeprefix("broadcast_"))
            running[key] = running.get(key, 0) + int(r["n"])
            i += 1
        while reports and reports[0][0] <= day:
            reported = reports.pop(0)[1]
        negative = {k: v for k, v in running.items() if v < 0}
        assert not negative, f"{level} below zero on {day}: {negative}"
        want = {k: v for k, v in reported.items() if level == "district" or k[1] != DISTRICT}
        assert _nonzero(running) == _nonzero(want), f"{level} on {day}"
        day += timedelta(days=1)


# -- the property ---------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(PEOPLE, st.lists(OPERATION, min_size=25, max_size=60))
def test_every_level_reports_a_directives_reach_and_reads_as_the_street_counts_them(street, district, people,
                                                                                    operations):
    _reset(street.cfg["DATABASE_URL"], [t for t in street.tables if t.split(".")[0] in TOUCHED])
    _reset(district["dsn"], district["tables"])
    street.day, street.done = START, set()
    saved = clock.now, clock.today
    clock_at(START)
    try:
        h = History(street, district)
        h.populate(people)
        for op in operations:
            h.play(op)
        h.report()      # the last report: then every level holds what the street holds
        for name in sorted(street.done):
            event(name)
        event(f"{len(operations)//10*10}+ operations")
        event(f"{len(h.directives)} directives")
        for r in street.read("notification", "SELECT DISTINCT 'broadcast ' || status AS s FROM broadcasts UNION "
                                             "SELECT DISTINCT 'delivery ' || channel || ' ' || status FROM deliveries"):
            event(r["s"])
        for m in MEASURES:
            if any(v for (_, node, measure), v in h.reports[-1][1].items() if measure == m and node == STREET):
                event(f"{m} reported")
        for level, pool in (("street", street.pool("aggregator")), ("district", district["pool"])):
            check_days(h, pool, level, START, street.day)
    finally:
        clock.now, clock.today = saved
