"""Notices, deliveries and emergency broadcasts on real PostgreSQL, sent through real local servers.

Real: PostgreSQL (the migrated notification schema), an HTTP provider speaking our SMS/WeChat
protocol (tests.integration.providers.FakeProvider), an SMTP server (aiosmtpd) and a webhook
receiver, all on real sockets. Faked: the registry, behind the one callable each use case takes
(`nodes`, `organizations`). The sender is driven pass by pass here; the service runs the same
passes from its own green thread (see test_notification_api.py).
"""
import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.rows import dict_row

from services.notification import broadcasts, channels, digests, fanout, notices, rules, subscribers, triggers
from services.notification.sender import Sender
from shared import facts
from shared.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from shared.protect import Vault
from shared import clock
from tests.integration.providers import FakeProvider, LocalSmtp, WebhookReceiver

STREET, C1, C2 = "310110012", "310110012001", "310110012002"
ADMIN = {"actor": "token:a:王建国", "scope": STREET, "role": "street_admin"}
CHECKER = {"actor": "token:b:李明", "scope": STREET, "role": "street_admin"}
THIRD = {"actor": "token:c:张伟", "scope": STREET, "role": "street_admin"}
NODES = {STREET: "长海路街道", C1: "长海一村", C2: "长海二村"}
LOCAL = ("127.0.0.1/32",)   # the local webhook receiver, allowed as WEBHOOK_ALLOW_NETWORKS would


def nodes(code):
    if code not in NODES:
        raise NotFound(f"no node {code}")
    return {"code": code, "name": NODES[code]}


def now():
    return datetime.now(timezone.utc)


@pytest.fixture
def tx(in_tx):
    return in_tx("notification")


@pytest.fixture
def q(schema_sql):
    return schema_sql("notification")


@pytest.fixture
def vault(cfg):
    return Vault.from_config(cfg)


@pytest.fixture
def conn(cfg):
    with psycopg.connect(cfg["DATABASE_URL"], row_factory=dict_row) as c:
        c.execute('SET search_path TO "notification"')
        c.commit()
        yield c


@pytest.fixture
def sms():
    with FakeProvider("alpha", token="alpha-token") as a, FakeProvider("beta", token="beta-token") as b:
        yield a, b


def make_sender(vault, sms_servers=(), smtp=None, rates=None, **kw):
    adapters = {"sms": [channels.HttpProvider(s.name, "sms", s.url, s.token, timeout=2) for s in sms_servers],
                "webhook": [channels.WebhookChannel(secret="w" * 32, allow=LOCAL)]}
    if smtp is not None:
        adapters["email"] = [channels.SmtpChannel(smtp.url, "noreply@changhai.example.cn")]
    kw.setdefault("retry_base", 0.01)
    return Sender(adapters, vault, rates=rates or {}, **kw)


def drain(sender, conn, passes=1):
    total = 0
    for _ in range(passes):
        with conn.transaction():
            total += sender.send_once(conn)
    return total


def drain_until(sender, conn, done, tries=200):
    import time as clock
    for _ in range(tries):
        drain(sender, conn)
        if done():
            return
        clock.sleep(0.02)
    raise AssertionError("the sender did not get there")


def people(tx, vault, n=3, community=C1, phone=True, **extra):
    for i in range(1, n + 1):
        tx(subscribers.apply_resident, {"id": i, "name": ["王秀英", "陈志强", "刘桂兰", "张伟", "李娜"][i % 5],
                                        "community_code": community if i % 2 else C2, "grid_code": None,
                                        "household_id": i, "tags": ["elderly_alone"] if i == 1 else [],
                                        "status": "active", "version": 1, **extra})
        if phone:
            tx(subscribers.set_channel, vault, i, {"channel": "sms", "address": f"1391234{i:04d}"}, ADMIN)


def meeting_event(event_id="evt-1", ids=(1, 2)):
    return {"event_id": event_id, "type": "meeting_scheduled", "occurred_at": now().isoformat(),
            "source": {"service": "consultation"},
            "payload": {"id": 5, "community_code": C1, "title": "停车问题协商议事会",
                        "starts_at": "2026-11-28T19:00:00+08:00", "place": "居委会二楼会议室", "status": "scheduled",
                        "participant_resident_ids": list(ids)}}


def test_a_trigger_delivered_twice_reaches_each_person_once(tx, q, vault, conn, sms):
    people(tx, vault)
    first = tx(triggers.meeting, meeting_event(), now(), 19)
    again = tx(triggers.meeting, meeting_event(), now(), 19)
    assert first[1] == 4 and again == (first[0], 0, True)    # inbox + sms for two people, then nothing
    sender = make_sender(vault, sms)
    assert drain(sender, conn) == 4 and drain(sender, conn) == 0
    alpha = sms[0]
    assert len(alpha.requests) == 1 and alpha.duplicates == 0
    assert sorted(m["text"] for m in alpha.received) == [
        f"{name}您好，停车问题协商议事会定于2026-11-28 19:00在居委会二楼会议室召开，请准时参加。"
        for name in ("刘桂兰", "陈志强")]
    assert q("SELECT channel, status, provider FROM deliveries ORDER BY resident_id, channel") == [
        ("inbox", "delivered", "inbox"), ("sms", "sent", "alpha"), ("inbox", "delivered", "inbox"),
        ("sms", "sent", "alpha")]


def test_a_failing_provider_is_retried_then_the_next_one_takes_over(tx, q, vault, conn, sms):
    people(tx, vault, n=1)
    alpha, beta = sms
    alpha.always_fail(503)
    tx(triggers.meeting, meeting_event(ids=[1]), now(), 19)
    sender = make_sender(vault, sms, failover_after=3, max_attempts=6)
    drain_until(sender, conn, lambda: q("SELECT status FROM deliveries WHERE channel = 'sms'")[0][0] == "sent")
    assert len(alpha.requests) == 3 and len(beta.received) == 1
    assert q("SELECT attempts, provider, provider_ref FROM deliveries WHERE channel = 'sms'") == [
        (4, "beta", beta.ids["2"])]


def test_refusals_fail_at_once_and_retries_are_bounded(tx, q, vault, conn, sms):
    people(tx, vault, n=2)
    alpha, _ = sms
    alpha.reject("13912340001", "空号")
    tx(triggers.meeting, meeting_event(ids=[1]), now(), 19)
    sender = make_sender(vault, sms[:1], max_attempts=3)
    drain(sender, conn)
    assert q("SELECT status, attempts, error FROM deliveries WHERE channel = 'sms'") == [("failed", 1, "alpha rejected: 空号")]
    alpha.always_fail(500)
    tx(triggers.meeting, meeting_event("evt-2", ids=[2]), now(), 19)
    drain_until(sender, conn, lambda: q("SELECT status FROM deliveries WHERE channel = 'sms' AND resident_id = 2")
                [0][0] == "failed")
    (attempts, error), = q("SELECT attempts, error FROM deliveries WHERE channel = 'sms' AND resident_id = 2")
    assert attempts == 3 and error.startswith("gave up after 3 attempts")


def test_quiet_hours_hold_normal_notices_and_let_critical_ones_through(tx, q, vault, conn, sms):
    people(tx, vault, n=1)
    local = now().astimezone(clock.zone())
    start, end = (local - timedelta(hours=1)).time(), (local + timedelta(hours=1)).time()
    tx(subscribers.set_preferences, 1, {"quiet_start": start.strftime("%H:%M"), "quiet_end": end.strftime("%H:%M")},
       ADMIN)
    sent = tx(notices.targeted, nodes, {"prefix": C1, "title": "社区义诊", "message": "周六上午义诊。",
                                        "channels": ["sms"], "request_id": "n-1"}, ADMIN, now(), 19)
    assert sent["deliveries_added"] == 1
    sender = make_sender(vault, sms)
    assert drain(sender, conn) == 0 and not sms[0].received                  # held until the quiet hours end
    (due,), = q("SELECT due_at FROM deliveries")[0:1]
    assert due.astimezone(clock.zone()).time().replace(second=0, microsecond=0) == end.replace(second=0,
                                                                                              microsecond=0)
    b = tx(broadcasts.create, nodes, {"prefix": C1, "title": "台风“梅花”防御", "channels": ["sms"],
                                      "message": "台风“梅花”预计今晚登陆，请关好门窗，非必要不外出。"}, ADMIN)
    tx(broadcasts.submit, b["id"], ADMIN)
    tx(broadcasts.approve, nodes, b["id"], CHECKER, now(), 19)
    assert drain(sender, conn) == 1
    assert [m["subject"] for m in sms[0].received] == ["【应急通知】长海一村"]


def test_opt_outs_are_kept_except_for_critical_notices(tx, q, vault):
    people(tx, vault, n=1)
    tx(subscribers.set_preferences, 1, {"opted_out": ["general:sms"]}, ADMIN)
    with pytest.raises(ValidationFailed) as err:
        tx(subscribers.set_preferences, 1, {"opted_out": ["emergency:*"]}, ADMIN)
    assert "opted_out" in err.value.fields
    tx(notices.targeted, nodes, {"prefix": C1, "title": "通知", "message": "周六停水。", "channels": ["sms", "inbox"],
                                 "request_id": "n-2"}, ADMIN, now(), 19)
    assert q("SELECT channel FROM deliveries") == [("inbox",)]


def test_an_unapproved_broadcast_sends_nothing_and_approval_takes_a_second_person(tx, q, vault, conn, sms):
    people(tx, vault, n=4)
    b = tx(broadcasts.create, nodes, {"prefix": STREET, "title": "停水通知", "message": "明日9时至15时停水。",
                                      "request_id": "b-1"}, ADMIN)
    assert tx(broadcasts.create, nodes, {"prefix": STREET, "title": "停水通知", "message": "明日9时至15时停水。",
                                         "request_id": "b-1"}, ADMIN)["replayed"] is True
    with pytest.raises(Conflict):                       # a draft is not approved before it is submitted
        tx(broadcasts.approve, nodes, b["id"], CHECKER, now(), 19)
    tx(broadcasts.submit, b["id"], ADMIN)
    with pytest.raises(Forbidden) as err:
        tx(broadcasts.approve, nodes, b["id"], ADMIN, now(), 19)
    assert "two-person" in err.value.message
    edited = tx(broadcasts.edit, nodes, b["id"], {"message": "明日9时至16时停水，请提前储水。"}, CHECKER)
    assert edited["version"] == 2 and edited["status"] == "draft" and len(edited["versions"]) == 2
    tx(broadcasts.submit, b["id"], CHECKER)
    with pytest.raises(Forbidden):                      # the editor wrote this version: not theirs to approve
        tx(broadcasts.approve, nodes, b["id"], CHECKER, now(), 19)
    with pytest.raises(Forbidden):                      # nor the author's: it takes a third person now
        tx(broadcasts.approve, nodes, b["id"], ADMIN, now(), 19)
    rejected = tx(broadcasts.reject, b["id"], {"reason": "停水时间以自来水公司公告为准"}, THIRD)
    assert rejected["status"] == "rejected" and rejected["reason"] == "停水时间以自来水公司公告为准"
    assert drain(make_sender(vault, sms), conn) == 0 and q("SELECT count(*) FROM deliveries") == [(0,)]
    with pytest.raises(ValidationFailed) as err:
        tx(broadcasts.create, nodes, {"prefix": "310110012099", "title": "x", "message": "y"}, ADMIN)
    assert "prefix" in err.value.fields
    with pytest.raises(Forbidden):
        tx(broadcasts.create, nodes, {"prefix": STREET, "title": "x", "message": "y"},
           {"actor": "token:c:社区", "scope": C1, "role": "community_worker"})


def test_a_cancelled_broadcast_stops(tx, q, vault, conn, sms):
    people(tx, vault, n=5)
    b = tx(broadcasts.create, nodes, {"prefix": STREET, "title": "燃气检修", "message": "今晚燃气检修，请关闭阀门。",
                                      "channels": ["sms"]}, ADMIN)
    tx(broadcasts.submit, b["id"], ADMIN)
    approved = tx(broadcasts.approve, nodes, b["id"], CHECKER, now(), 19)
    assert approved["status"] == "sending" and approved["deliveries_queued"] == 5
    sender = make_sender(vault, sms, batch=2)
    assert drain(sender, conn) == 2
    cancelled = tx(broadcasts.cancel, b["id"], {"reason": "检修推迟"}, ADMIN)
    assert cancelled["status"] == "cancelled" and cancelled["deliveries_cancelled"] == 3
    assert drain(sender, conn, passes=3) == 0 and len(sms[0].received) == 2
    assert cancelled["rollup"]["total"] == {"targeted": 5, "reached": 2, "read": 0}
    with pytest.raises(Conflict):
        tx(broadcasts.cancel, b["id"], {"reason": "again"}, ADMIN)


def test_a_sent_broadcast_is_closed_and_rolled_up_per_community(tx, q, vault, conn, sms):
    people(tx, vault, n=4)
    b = tx(broadcasts.create, nodes, {"prefix": STREET, "title": "寒潮预警", "message": "明日气温骤降，请注意保暖。"},
           ADMIN)
    tx(broadcasts.submit, b["id"], ADMIN)
    tx(broadcasts.approve, nodes, b["id"], CHECKER, now(), 19)
    drain(make_sender(vault, sms), conn)
    assert tx(broadcasts.close_finished) == [b["id"]]
    inbox = tx(notices.inbox, 1, {}, ADMIN)
    assert inbox["unread"] == 1 and inbox["items"][0]["subject"] == "【应急通知】长海路街道"
    tx(notices.mark_read, 1, inbox["items"][0]["id"], ADMIN)
    assert tx(notices.mark_read, 1, inbox["items"][0]["id"], ADMIN)["replayed"] is True
    view = tx(broadcasts.get, b["id"], ADMIN)
    assert view["status"] == "sent"
    assert view["rollup"]["communities"] == [{"community_code": C1, "targeted": 2, "reached": 2, "read": 1},
                                             {"community_code": C2, "targeted": 2, "reached": 2, "read": 0}]
    rows = q("SELECT community_code, resident_id, status FROM deliveries")
    spec = rules.rollup([{"community_code": c, "resident_id": r, "status": s} for c, r, s in rows])
    assert spec == {r["community_code"]: {k: r[k] for k in ("targeted", "reached", "read")}
                    for r in view["rollup"]["communities"]}
    with pytest.raises(NotFound):                     # another community's token does not see the street's
        tx(broadcasts.get, b["id"], {"actor": "t", "scope": C1, "role": "community_worker"})


def test_a_resident_reads_only_their_own_inbox(tx, vault):
    people(tx, vault, n=2)
    me = {"actor": "token:r:王秀英", "scope": C1, "role": "resident", "resident_id": 1}
    assert tx(notices.inbox, 1, {}, me)["items"] == []
    with pytest.raises(Forbidden):
        tx(notices.inbox, 2, {}, me)
    with pytest.raises(Forbidden):
        tx(subscribers.set_channel, vault, 2, {"channel": "sms", "address": "13900000000"}, me)


def test_addresses_are_checked_sealed_and_masked(tx, q, vault):
    people(tx, vault, n=1, phone=False)
    for bad in ({"channel": "sms", "address": "12345"}, {"channel": "email", "address": "not-an-email"},
                {"channel": "wechat", "address": "a b"}, {"channel": "fax", "address": "010-1234"}):
        with pytest.raises(ValidationFailed) as err:
            tx(subscribers.set_channel, vault, 1, bad, ADMIN)
        assert set(err.value.fields) <= {"address", "channel"}
    shown = tx(subscribers.set_channel, vault, 1, {"channel": "sms", "address": "13912345678"}, ADMIN)
    assert shown == [{"channel": "sms", "address": "139****5678", "source": "given",
                      "updated_at": shown[0]["updated_at"]}]
    (cipher,), = q("SELECT address_cipher FROM subscriber_channels")
    assert b"13912345678" not in bytes(cipher)
    with pytest.raises(NotFound):
        tx(subscribers.set_channel, vault, 99, {"channel": "sms", "address": "13912345678"}, ADMIN)


def test_email_goes_through_real_smtp_and_webhooks_are_signed(tx, q, vault, conn):
    people(tx, vault, n=2, phone=False)
    tx(subscribers.set_channel, vault, 1, {"channel": "email", "address": "wang.xiuying@example.cn"}, ADMIN)
    with LocalSmtp() as smtp, WebhookReceiver() as hooks:
        tx(subscribers.set_channel, vault, 2, {"channel": "webhook", "address": hooks.url_for("/linli")}, ADMIN,
           allow=LOCAL)
        tx(triggers.meeting, meeting_event(ids=[1, 2]), now(), 19)
        drain(make_sender(vault, smtp=smtp), conn)
        mail = smtp.messages[0].message
        assert mail["Subject"] == "议事会通知：停车问题协商议事会" and "陈志强您好" in mail.get_content()
        hook = hooks.received[0]
        assert channels.verify_receipt("w" * 32, hook["body"], hook["headers"]["X-Linli-Signature"])
        assert json.loads(hook["body"])["subject"] == "议事会通知：停车问题协商议事会"
    assert q("SELECT channel, status FROM deliveries WHERE channel <> 'inbox' ORDER BY channel") == [
        ("email", "sent"), ("webhook", "sent")]


def test_receipts_move_deliveries_forward_only_and_must_be_signed(tx, q, vault, conn, sms):
    people(tx, vault, n=1)
    tx(triggers.meeting, meeting_event(ids=[1]), now(), 19)
    drain(make_sender(vault, sms), conn)
    ref = sms[0].ids["2"]
    providers = {"sms": [{"name": "alpha", "url": sms[0].url, "token": "alpha-token", "receipt_secret": "r" * 32}]}
    body = json.dumps({"receipts": [{"id": ref, "status": "delivered"}, {"id": "nope", "status": "read"}]})
    with pytest.raises(Unauthorized):
        tx(notices.receipts, providers, "alpha", body, channels.sign("alpha-token", body.encode()))
    got = tx(notices.receipts, providers, "alpha", body, channels.sign("r" * 32, body.encode()))
    assert got == {"applied": 1, "ignored": 0, "waiting": 1}       # "nope" may be a batch not settled yet
    back = json.dumps({"receipts": [{"id": ref, "status": "delivered"}]})
    assert tx(notices.receipts, providers, "alpha", back, channels.sign("r" * 32, back.encode()))["ignored"] == 1
    assert q("SELECT status FROM deliveries WHERE channel = 'sms'") == [("delivered",)]


def test_a_receipt_faster_than_the_senders_commit_applies_when_the_batch_settles(tx, q, vault, conn, sms):
    people(tx, vault, n=1)
    tx(triggers.meeting, meeting_event(ids=[1]), now(), 19)
    providers = {"sms": [{"name": "alpha", "url": sms[0].url, "token": "alpha-token"}]}
    early = json.dumps({"receipts": [{"id": "alpha-1", "status": "delivered"}, {"id": "alpha-1", "status": "read"}]})
    # The provider's ids count from 1: "alpha-1" is the id the sender is about to be given.
    assert tx(notices.receipts, providers, "alpha", early, channels.sign("alpha-token", early.encode()))["waiting"] == 1
    drain(make_sender(vault, sms), conn)
    assert q("SELECT provider_ref, status FROM deliveries WHERE channel = 'sms'") == [("alpha-1", "read")]
    assert q("SELECT count(*) FROM early_receipts") == [(0,)]


def test_a_channel_rate_limit_spreads_a_burst(tx, q, vault, conn, sms):
    people(tx, vault, n=5)
    tx(notices.targeted, nodes, {"prefix": STREET, "title": "通知", "message": "周六大扫除。", "channels": ["sms"],
                                 "request_id": "n-3"}, ADMIN, now(), 19)
    sender = make_sender(vault, sms, rates={"sms": 2.0})
    drain(sender, conn)
    assert len(sms[0].received) == 2
    assert q("SELECT count(*) FROM deliveries WHERE status = 'queued' AND due_at > now()") == [(3,)]
    assert q("SELECT max(attempts) FROM deliveries WHERE status = 'queued'") == [(0,)]   # waiting is not failing


def test_points_notices_wait_for_the_daily_digest(tx, q, vault, conn, sms):
    people(tx, vault, n=1)
    posted = [{"event_id": f"p-{i}", "type": "points_posted", "occurred_at": now().isoformat(),
               "source": {"service": "points"},
               "payload": {"resident_id": 1, "community_code": C1, "points": 10 * i, "hours": "2.0",
                           "served_on": "2026-11-2%d" % i, "category_code": "security_patrol"}} for i in (1, 2)]
    tx(triggers.points, posted, now(), 19, {"security_patrol": "平安巡逻"})
    assert q("SELECT DISTINCT status FROM deliveries") == [("held",)]
    q("UPDATE deliveries SET due_at = now() - interval '1 minute'")
    assert tx(digests.bundle) == (2, 0)                          # one digest per channel (inbox, sms)
    assert tx(digests.bundle) == (0, 0)
    drain(make_sender(vault, sms), conn)
    [text] = [m["text"] for m in sms[0].received]
    assert text == "陈志强您好，今日消息：\n1. 服务积分到账 10 分\n2. 服务积分到账 20 分"
    assert q("SELECT status, count(*) FROM deliveries GROUP BY status ORDER BY status") == [
        ("bundled", 4), ("delivered", 1), ("sent", 1)]
    first_notice = q("SELECT min(notice_id) FROM deliveries WHERE status = 'bundled'")[0][0]
    assert tx(broadcasts.rollup, first_notice)["total"] == {"targeted": 1, "reached": 1, "read": 0}


def test_an_organisations_notice_reaches_its_members_only(tx, q, vault):
    people(tx, vault, n=3)
    for rid in (1, 3):
        tx(subscribers.apply_membership, {"type": "organization_member_joined", "occurred_at": now().isoformat(),
                                          "payload": {"organization_id": 8, "resident_id": rid}})
    org = lambda oid, caller: {"id": oid, "name": "长海一村平安志愿服务队", "community_code": C1}  # noqa: E731
    leader = {"actor": "token:l:队长", "scope": C1, "role": "organization_leader", "organization_id": 8}
    sent = tx(notices.organization_notice, org, 8, {"notice": "周六上午8点集合巡逻。", "channels": ["inbox"],
                                                    "request_id": "o-1"}, leader, now(), 19)
    assert sent["rollup"]["total"]["targeted"] == 2
    assert q("SELECT resident_id FROM deliveries ORDER BY 1") == [(1,), (3,)]
    with pytest.raises(Forbidden):
        tx(notices.organization_notice, org, 9, {"notice": "x", "request_id": "o-2"}, leader, now(), 19)


def test_a_directive_from_above_starts_a_broadcast_once(tx, q, vault):
    people(tx, vault, n=2)
    directive = {"id": "d-310110-7", "prefix": "310110", "title": "防汛Ⅳ级应急响应",
                 "message": "今夜有暴雨，请低洼地区居民做好防范。", "issued_by": "310110:区应急局",
                 "approved_by": "310110:区应急局值班领导", "channels": ["inbox", "sms"]}
    first = tx(broadcasts.start_from_directive, nodes, directive, STREET, now(), 19)
    assert first["status"] == "sending" and first["prefix"] == STREET and first["deliveries_queued"] == 4
    again = tx(broadcasts.start_from_directive, nodes, directive, STREET, now(), 19)
    assert again["replayed"] is True and q("SELECT count(*) FROM deliveries") == [(4,)]
    with pytest.raises(ValidationFailed):
        tx(broadcasts.start_from_directive, nodes, {**directive, "id": "d-2", "prefix": "310115"}, STREET, now(), 19)



def test_a_resident_who_died_since_the_notice_is_not_sent_to(tx, q, vault, conn, sms):
    people(tx, vault, n=2)
    tx(triggers.meeting, meeting_event(ids=[1, 2]), now(), 19)
    tx(subscribers.apply_resident, {"id": 2, "name": "刘桂兰", "community_code": C2, "grid_code": None,
                                    "household_id": 2, "tags": [], "status": "deceased", "version": 2})
    drain(make_sender(vault, sms), conn)
    assert [m["to"] for m in sms[0].received] == ["13912340001"]
    assert q("SELECT DISTINCT status, error FROM deliveries WHERE resident_id = 2") == [
        ("cancelled", "the resident is deceased")]


def test_a_notice_waits_for_a_named_person_the_registry_has_not_announced_yet(tx, q, vault, conn, sms):
    people(tx, vault, n=1)
    first = tx(triggers.meeting, meeting_event(ids=[1, 7]), now(), 19)
    assert first[1] == 2 and q("SELECT resident_id FROM notice_waits") == [(7,)]
    assert tx(fanout.late, now(), 19) == (0, 0)                 # still unknown: keeps waiting
    tx(subscribers.apply_resident, {"id": 7, "name": "黄海燕", "community_code": C1, "grid_code": None,
                                    "household_id": 7, "tags": [], "status": "active", "version": 1})
    assert tx(fanout.late, now(), 19) == (1, 0)                 # the inbox (no number yet)
    assert tx(fanout.late, now(), 19) == (0, 0)
    drain(make_sender(vault, sms), conn)
    assert q("SELECT resident_id, channel, status FROM deliveries WHERE resident_id = 7") == [(7, "inbox", "delivered")]
    q("INSERT INTO notice_waits (notice_id, resident_id, created_at) VALUES (%s, 8, now() - interval '2 days')",
      (first[0],))
    assert tx(fanout.late, now(), 19) == (0, 1)                 # given up after a day


def test_what_changed_since_fan_out_is_respected_at_send_time(tx, q, vault, conn, sms):
    people(tx, vault, n=2)
    tx(notices.targeted, nodes, {"prefix": STREET, "title": "通知", "message": "周六停电检修。", "channels": ["sms"],
                                 "request_id": "n-9"}, ADMIN, now(), 19)
    local = now().astimezone(clock.zone())
    tx(subscribers.set_preferences, 1, {"quiet_start": (local - timedelta(hours=1)).strftime("%H:%M"),
                                        "quiet_end": (local + timedelta(hours=1)).strftime("%H:%M")}, ADMIN)
    tx(subscribers.set_preferences, 2, {"opted_out": ["general:sms"]}, ADMIN)
    drain(make_sender(vault, sms), conn)
    assert sms[0].received == []
    assert q("SELECT resident_id, status, due_at > now(), attempts FROM deliveries ORDER BY resident_id") == [
        (1, "queued", True, 0), (2, "cancelled", False, 1)]


def test_provider_text_is_made_safe_before_it_is_stored(tx, q, vault, conn, sms):
    people(tx, vault, n=1)
    sms[0].reject("13912340001", "bad\x00number 13912340001")
    tx(triggers.meeting, meeting_event(ids=[1]), now(), 19)
    drain(make_sender(vault, sms), conn)
    assert q("SELECT status, error FROM deliveries WHERE channel = 'sms'") == [
        ("failed", "alpha rejected: bad number <address>")]


def test_request_ids_belong_to_their_author(tx, q, vault):
    people(tx, vault, n=1)
    body = {"prefix": C1, "title": "通知", "message": "周六义诊。", "channels": ["inbox"], "request_id": "same"}
    mine = tx(notices.targeted, nodes, body, ADMIN, now(), 19)
    theirs = tx(notices.targeted, nodes, {**body, "message": "周日献血。"}, CHECKER, now(), 19)
    assert theirs["replayed"] is False and theirs["id"] != mine["id"]
    assert tx(notices.targeted, nodes, body, ADMIN, now(), 19)["replayed"] is True
    draft = {"prefix": C1, "title": "停水", "message": "明日停水。", "request_id": "b-same"}
    tx(broadcasts.create, nodes, draft, ADMIN)
    with pytest.raises(Conflict) as err:
        tx(broadcasts.create, nodes, draft, CHECKER)
    assert "request_id" in err.value.fields


def test_a_resident_cannot_point_the_service_at_a_webhook(tx, vault):
    people(tx, vault, n=1, phone=False)
    me = {"actor": "token:r:陈志强", "scope": C1, "role": "resident", "resident_id": 1}
    with pytest.raises(Forbidden):
        tx(subscribers.set_channel, vault, 1, {"channel": "webhook", "address": "http://10.0.0.5/admin"}, me)
    assert tx(subscribers.set_channel, vault, 1, {"channel": "email", "address": "chen@example.cn"}, me)


def test_a_district_broadcast_goes_down_as_a_signed_directive_and_acknowledgements_go_up(tx, q, vault, conn, sms,
                                                                                        cfg):
    from shared.db import transaction
    district = facts.Signer(facts._b64(b"\x44" * 32))
    source = {"service": "notification", "level": "district", "node_code": "310110", "instance": "district-310110"}
    nodes_above = {"310110": "杨浦区"}
    officer = {"actor": "token:d:区应急局 赵刚", "scope": "310110", "role": "street_admin"}
    leader = {"actor": "token:d:区应急局 钱伟", "scope": "310110", "role": "street_admin"}

    def at_district(fn, *args):
        with transaction(cfg["DATABASE_URL"], "notification", source, district) as t:
            return fn(t, *args)
    b = at_district(broadcasts.create, lambda c: {"name": nodes_above[c]},
                    {"prefix": "310110", "title": "寒潮蓝色预警", "message": "今夜最低气温零下4度，请注意防寒。"}, officer)
    at_district(broadcasts.submit, b["id"], officer)
    at_district(broadcasts.approve, lambda c: {"name": nodes_above[c]}, b["id"], leader, now(), 19)
    (body,), = q("SELECT body FROM outbox WHERE exchange = 'directives' AND routing_key = 'broadcast.emergency'")
    assert facts.verify(body, district.public_key) and body["issuer"] == "310110"
    assert body["directive"]["id"] == f"310110:broadcast:{b['id']}" and "钱伟" in body["directive"]["approved_by"]

    # The street below takes it (its consumer checks the signature against PARENT_KEY first).
    people(tx, vault, n=3)
    q("DELETE FROM outbox")
    started = tx(broadcasts.start_from_directive, nodes, body["directive"], STREET, now(), 19)
    drain(make_sender(vault, sms), conn)
    today = now().date()
    assert tx(broadcasts.report_acknowledgements, today) == 4      # targeted and reached, two communities
    first = {(f["type"], f["node"]): f["delta"] for (b_,) in q("SELECT body FROM outbox WHERE exchange = 'facts'")
             for f in b_["facts"]}
    assert first == {("broadcast_targeted", C1): 2, ("broadcast_reached", C1): 2,
                     ("broadcast_targeted", C2): 1, ("broadcast_reached", C2): 1}
    inbox = tx(notices.inbox, 1, {}, ADMIN)
    tx(notices.mark_read, 1, inbox["items"][0]["id"], ADMIN)
    assert tx(broadcasts.report_acknowledgements, today) == 1      # only what changed: one read
    assert tx(broadcasts.report_acknowledgements, today) == 0
    # Weeks later, a read is still reported: the broadcast is looked at again because a delivery changed.
    q("UPDATE broadcasts SET created_at = created_at - interval '30 days', "
      "acknowledged_through = acknowledged_through - interval '30 days'")
    q("UPDATE deliveries SET updated_at = updated_at - interval '31 days'")
    assert tx(broadcasts.report_acknowledgements, today) == 0      # nothing changed: not even looked at
    assert q("SELECT acknowledged_through < now() - interval '29 days' FROM broadcasts "
             "WHERE directive_id IS NOT NULL") == [(True,)]
    tx(notices.mark_read, 2, tx(notices.inbox, 2, {}, ADMIN)["items"][0]["id"], ADMIN)
    assert tx(broadcasts.report_acknowledgements, today) == 1
    assert started["directive_id"] == body["directive"]["id"]
