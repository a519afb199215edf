"""The notification service running for real: events from RabbitMQ, the HTTP API, real providers.

Real: every service of the instance in this test's vhost behind the HTTP gateway, PostgreSQL,
RabbitMQ, two HTTP providers speaking our SMS protocol, an SMTP server (aiosmtpd). The
notification service's own sender thread does the sending. Events are published to the broker
the way the consultation service publishes them, twice where the point is that twice is once.
"""
import pytest
from kombu import Exchange

from services.notification.service import DIRECTIVE_ROUTING_KEY
from services.registry.identity import check_character
from shared import envelope, facts
from shared.messaging import DIRECTIVES, events_exchange
from shared.metrics import DUPLICATES
from tests.conftest import publish_confirmed
from tests.integration.conftest import assert_problem, wait_for
from tests.integration.providers import FakeProvider, LocalSmtp

C1 = "310110012001"
N = "/api/v1"
PARENT = facts.Signer("cGFyZW50LWRpc3RyaWN0LXNpZ25pbmcta2V5LTAwMDE=")   # the district above, in this test


@pytest.fixture
def servers():
    with FakeProvider("alpha", token="alpha-token") as alpha, FakeProvider("beta", token="beta-token") as beta, \
            LocalSmtp() as smtp:
        yield alpha, beta, smtp


@pytest.fixture
def config(config, servers):
    alpha, beta, smtp = servers
    return {**config, "SMTP_URL": smtp.url, "NOTIFY_RETRY_BASE": 0.05, "NOTIFY_POLL_SECONDS": 0.2,
            "NOTIFY_FAILOVER_AFTER": 2, "PARENT_KEY": PARENT.public_key,
            "NOTIFICATION_PROVIDERS": {"sms": [{"name": "alpha", "url": alpha.url, "token": "alpha-token"},
                                               {"name": "beta", "url": beta.url, "token": "beta-token"}]}}


def register(api, seq, name, phone, community=C1, tags=()):
    first17 = "310110" + "19520317" + seq
    body = {"name": name, "id_number": first17 + check_character(first17), "community_code": community,
            "residence_type": "registered", "building": "5号", "unit": "2单元", "room": f"{seq}",
            "relation": "self", "phone": phone, "tags": list(tags)}
    resp = api.post(f"{N}/residents", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def subscribed_with_phone(sql, rid):
    return wait_for(lambda: sql("SELECT source FROM notification.subscriber_channels WHERE resident_id = %s "
                                "AND channel = 'sms'", (rid,)), message=f"resident {rid}'s number")


def publish(config, exchange, routing_key, body, times=1):
    publish_confirmed(config["AMQP_URI"], exchange, routing_key, *[body] * times, serializer="json")


def test_a_meeting_event_delivered_twice_sends_one_sms_each(api, config, sql, servers):
    alpha, _, _ = servers
    ids = [register(api, "101", "陈志强", "13912340101"), register(api, "102", "刘桂兰", "13912340102")]
    for rid in ids:
        assert subscribed_with_phone(sql, rid) == [{"source": "registry"}]   # the registry's number, sealed here
    env = envelope.make("meeting_scheduled", {"id": 9, "community_code": C1, "title": "加装电梯协商议事会",
                                              "starts_at": "2026-12-02T19:00:00+08:00", "place": "居委会二楼会议室",
                                              "status": "scheduled", "participant_resident_ids": ids},
                        envelope.source_from_config("consultation", config))
    duplicates = DUPLICATES.labels("notification.on_meeting_scheduled")
    before = duplicates._value.get()
    publish(config, events_exchange("consultation"), "meeting_scheduled", env, times=2)
    wait_for(lambda: len(alpha.received) == 2, message="two SMS")
    assert sorted(m["to"] for m in alpha.received) == ["13912340101", "13912340102"]
    assert all(m["subject"] == "议事会通知：加装电梯协商议事会" for m in alpha.received)
    # The second copy has been consumed (and ignored) before anything is counted.
    wait_for(lambda: duplicates._value.get() == before + 1, message="the second copy to be consumed")
    assert sql("SELECT count(*) AS n FROM notification.notices")[0]["n"] == 1
    assert len(alpha.requests) == 1 and alpha.duplicates == 0
    inbox = api.get(f"{N}/subscribers/{ids[0]}/inbox").json()
    assert inbox["unread"] == 1 and inbox["items"][0]["body"].startswith("陈志强您好，加装电梯协商议事会定于")


def test_a_failing_provider_is_retried_then_failed_over(api, config, sql, servers):
    alpha, beta, _ = servers
    alpha.always_fail(503)
    rid = register(api, "103", "张伟", "13912340103")
    subscribed_with_phone(sql, rid)
    sent = api.post(f"{N}/notices", json={"prefix": C1, "title": "社区义诊", "message": "周六上午9点在居委会义诊。",
                                          "channels": ["sms"], "request_id": "notice-103"})
    assert sent.status_code == 201, sent.text
    wait_for(lambda: len(beta.received) == 1, timeout=20, message="the second provider to take over")
    assert len(alpha.requests) == 2
    row = sql("SELECT status, attempts, provider FROM notification.deliveries WHERE channel = 'sms'")[0]
    assert row == {"status": "sent", "attempts": 3, "provider": "beta"}
    again = api.post(f"{N}/notices", json={"prefix": C1, "title": "社区义诊", "message": "周六上午9点在居委会义诊。",
                                           "channels": ["sms"], "request_id": "notice-103"})
    assert again.json()["replayed"] is True and len(beta.received) == 1


def test_an_emergency_broadcast_needs_a_second_person_and_reaches_everyone(api, config, sql, servers, make_token):
    alpha, _, _ = servers
    ids = [register(api, f"1{n:02d}", name, f"139123402{n:02d}") for n, name in
           enumerate(("王秀英", "李建华", "赵玉梅", "孙志刚"), start=10)]
    for rid in ids:
        subscribed_with_phone(sql, rid)
    checker = api.as_(make_token("street_admin", name="李明"))
    b = api.post(f"{N}/broadcasts", json={"prefix": C1, "title": "台风“梅花”防御紧急通知",
                                          "message": "台风“梅花”预计今晚登陆，请关好门窗，非必要不外出。",
                                          "channels": ["sms", "inbox"], "request_id": "typhoon-1"})
    assert b.status_code == 201, b.text
    bid = b.json()["id"]
    assert api.post(f"{N}/broadcasts/{bid}/submit").status_code == 200
    assert api.post(f"{N}/broadcasts/{bid}/approve").status_code == 403    # the author cannot approve
    assert sql("SELECT count(*) AS n FROM notification.deliveries")[0]["n"] == 0
    approved = checker.post(f"{N}/broadcasts/{bid}/approve")
    assert approved.status_code == 200, approved.text
    wait_for(lambda: len(alpha.received) == 4, message="four SMS")
    view = wait_for(lambda: (v := api.get(f"{N}/broadcasts/{bid}").json())["status"] == "sent" and v,
                    message="the broadcast to be sent")
    assert view["rollup"]["total"] == {"targeted": 4, "reached": 4, "read": 0}
    assert [e["status"] for e in view["log"]] == ["draft", "pending_approval", "approved", "sending", "sent"]
    assert_problem(api.post(f"{N}/broadcasts/{bid}/cancel", json={"reason": "晚了"}), 409, "status")


def test_a_directive_from_above_starts_a_broadcast_once_and_a_forged_one_is_dead_lettered(api, config, sql,
                                                                                           servers, broker):
    alpha, _, _ = servers
    rid = register(api, "120", "周桂芳", "13912340120")
    subscribed_with_phone(sql, rid)
    directive = PARENT.sign({"v": 1, "issuer": "310110", "directive": {
        "id": "310110:broadcast:77", "prefix": "310110", "title": "防汛Ⅳ级应急响应", "channels": ["sms"],
        "message": "今夜有暴雨，请低洼地区居民做好防范。", "issued_by": "310110:区应急局", "approved_by": "310110:值班领导"}})
    forged = {**directive, "directive": {**directive["directive"], "id": "310110:broadcast:78"}}
    publish(config, Exchange(DIRECTIVES.name, type="topic"), DIRECTIVE_ROUTING_KEY, directive, times=2)
    publish(config, Exchange(DIRECTIVES.name, type="topic"), DIRECTIVE_ROUTING_KEY, forged)
    wait_for(lambda: len(alpha.received) == 1, message="the directive's SMS")
    dlq = f"msg-directives-{DIRECTIVE_ROUTING_KEY}--notification.on_directive.dlq"
    wait_for(lambda: broker.depth(dlq) == 1, timeout=30, message="the forged directive in the DLQ")
    rows = sql("SELECT directive_id, prefix, status FROM notification.broadcasts")
    assert [r["directive_id"] for r in rows] == ["310110:broadcast:77"] and rows[0]["prefix"] == config["NODE_CODE"]
    assert len(alpha.received) == 1 and alpha.received[0]["text"] == "今夜有暴雨，请低洼地区居民做好防范。"


def test_a_resident_reads_their_inbox_and_sets_quiet_hours(api, sql, make_token):
    rid = register(api, "130", "吴淑珍", "13912340130")
    me = api.as_(make_token("resident", prefix=C1, name="吴淑珍", resident_id=rid))
    api.post(f"{N}/notices", json={"prefix": C1, "title": "停水通知", "message": "明日9时至15时停水，请提前储水。",
                                   "channels": ["inbox"], "request_id": "water-1"})
    inbox = wait_for(lambda: (b := me.get(f"{N}/me/inbox").json())["items"] and b, message="the inbox message")
    assert inbox["unread"] == 1 and inbox["items"][0]["subject"] == "停水通知"
    assert me.post(f"{N}/me/inbox/{inbox['items'][0]['id']}/read").status_code == 200
    assert me.get(f"{N}/me/inbox").json()["unread"] == 0
    prefs = me.put(f"{N}/me/preferences", json={"quiet_start": "22:00", "quiet_end": "07:00",
                                                "opted_out": ["points:sms"]})
    assert prefs.status_code == 200 and prefs.json()["quiet_start"] == "22:00"
    assert_problem(me.put(f"{N}/me/preferences", json={"opted_out": ["emergency:sms"]}), 422, "opted_out")
    assert me.get(f"{N}/broadcasts").status_code == 403
    assert me.get(f"{N}/subscribers/{rid}/inbox").status_code == 403


def test_every_notification_operation_answers_as_its_declaration_says(api, config, sql, make_token):
    """Each route once, through the gateway: the fixture holds every answer to the document, and the
    declared reply schemas send exactly the documented fields (a notice's `channels` among them)."""
    from services.notification.channels import sign
    rid = register(api, "140", "郑丽华", "13912340140")
    subscribed_with_phone(sql, rid)
    assert api.get(f"{N}/subscribers/{rid}").json()["resident_id"] == rid
    s = f"{N}/subscribers/{rid}"
    given = api.put(f"{s}/channels", json={"channel": "email", "address": "zheng@example.com"})
    assert given.status_code == 200 and {c["channel"] for c in given.json()} == {"sms", "email"}
    assert [c["channel"] for c in api.delete(f"{s}/channels/email").json()] == ["sms"]
    assert api.get(f"{s}/channels").json()[0]["address"] == "139****0140"
    assert api.put(f"{s}/preferences", json={"locale": "en"}).json()["locale"] == "en"
    assert api.get(f"{s}/preferences").json() == {"opted_out": [], "quiet_start": None, "quiet_end": None,
                                                  "locale": "en"}

    assert api.get(f"{N}/notices/reach", params={"tags": "elderly_alone,disabled"}).json() == {}
    assert api.get(f"{N}/notices/reach", params={"prefix": C1}).json()[C1] >= 1
    sent = api.post(f"{N}/notices", json={"prefix": C1, "title": "停电通知", "message": "明日停电。", "channels": ["inbox"],
                                          "request_id": "every-1"})
    assert sent.status_code == 201 and sent.headers["Location"] == f"/api/v1/notices/{sent.json()['id']}"
    notice = api.get(f"{N}/notices/{sent.json()['id']}").json()
    assert notice["channels"] == ["inbox"] and set(notice) == {
        "id", "trigger_key", "kind", "category", "priority", "template_code", "template_version", "context",
        "target", "channels", "scope_code", "created_by", "created_at", "rollup"}
    inbox = wait_for(lambda: (b := api.get(f"{s}/inbox").json())["items"] and b, message="the inbox message")
    assert api.post(f"{s}/inbox/{inbox['items'][0]['id']}/read").json()["status"] == "read"

    me = api.as_(make_token("resident", prefix=C1, name="郑丽华", resident_id=rid))
    again = me.post(f"{N}/me/inbox/{inbox['items'][0]['id']}/read").json()
    assert again == {"id": inbox["items"][0]["id"], "status": "read", "replayed": True}
    assert me.get(f"{N}/me/inbox", params={"unread": "true"}).json()["unread"] == 0
    assert me.get(f"{N}/me/preferences").json()["locale"] == "en"
    assert me.put(f"{N}/me/preferences", json={"locale": "zh"}).json()["locale"] == "zh"
    assert len(me.put(f"{N}/me/channels", json={"channel": "email", "address": "z@example.com"}).json()) == 2
    assert len(me.get(f"{N}/me/channels").json()) == 2
    assert len(me.delete(f"{N}/me/channels/email").json()) == 1

    checker = api.as_(make_token("street_admin", name="李明"))
    b = api.post(f"{N}/broadcasts", json={"prefix": C1, "title": "停水", "message": "明日停水。", "channels": ["inbox"]})
    assert b.status_code == 201 and b.headers["Location"] == f"/api/v1/broadcasts/{b.json()['id']}"
    bid = b.json()["id"]
    assert api.patch(f"{N}/broadcasts/{bid}", json={"title": "明日停水"}).json()["version"] == 2
    assert api.post(f"{N}/broadcasts/{bid}/submit").json()["status"] == "pending_approval"
    assert checker.post(f"{N}/broadcasts/{bid}/reject", json={"reason": "写明时间"}).json()["status"] == "rejected"
    api.patch(f"{N}/broadcasts/{bid}", json={"message": "明日9时至15时停水。"})
    api.post(f"{N}/broadcasts/{bid}/submit")
    approved = checker.post(f"{N}/broadcasts/{bid}/approve").json()
    assert approved["status"] == "sending" and approved["deliveries_queued"] >= 1
    assert [x["id"] for x in api.get(f"{N}/broadcasts", params={"under": C1}).json()["items"]] == [bid]
    deliveries = api.get(f"{N}/broadcasts/{bid}/deliveries").json()["items"]
    assert deliveries and set(deliveries[0]) <= {"id", "resident_id", "community_code", "channel", "status",
                                                 "attempts", "provider", "error", "due_at", "sent_at",
                                                 "delivered_at", "read_at"}
    assert api.get(f"{N}/broadcasts/{bid}").json()["rollup"]["source"] == "deliveries"
    draft = api.post(f"{N}/broadcasts", json={"prefix": C1, "title": "演练", "message": "周五消防演练。"}).json()
    assert api.post(f"{N}/broadcasts/{draft['id']}/cancel", json={"reason": "改期"}).json()["status"] == "cancelled"

    text = {"subject": "{{ title }}", "body": "{{ name }}：{{ message }}"}
    saved = api.put(f"{N}/notification/templates/every_notice", json={"category": "general", "zh": text})
    assert saved.status_code == 200 and saved.json()["version"] == 1
    assert api.get(f"{N}/notification/templates/every_notice").json()["versions"][0]["locale"] == "zh"

    raw = '{"receipts": [{"id": "not-yet-ours", "status": "delivered"}]}'
    got = api.post(f"{N}/notification/receipts/alpha", data=raw.encode(),
                   headers={"X-Linli-Signature": sign("alpha-token", raw.encode()),
                            "Content-Type": "application/json"})
    assert got.status_code == 200 and got.json() == {"applied": 0, "ignored": 0, "waiting": 1}
    assert_problem(api.get(f"{N}/notification/templates/Every-Notice"), 422, "code")


@pytest.mark.parametrize("form", ["http://127.0.0.1:{port}/api/v1/nodes", "http://2130706433:{port}/api/v1/nodes",
                                  "http://0x7f.1:{port}/api/v1/nodes", "http://[::ffff:127.0.0.1]:{port}/api/v1/nodes",
                                  "http://localhost:{port}/api/v1/nodes", "http://169.254.169.254/latest/meta-data/"])
def test_a_worker_cannot_point_a_webhook_inside(api, config, sql, make_token, form):
    """Issue 19's SSRF, saving: a community worker's webhook to the gateway itself is a 422 on `address`."""
    rid = register(api, "150", "周建平", "13912340150")
    subscribed_with_phone(sql, rid)
    worker = api.as_(make_token("community_worker", prefix=C1, name="社区工作者"))
    port = config["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1]
    body = assert_problem(worker.put(f"{N}/subscribers/{rid}/channels",
                                     json={"channel": "webhook", "address": form.format(port=port)}), 422, "address")
    assert "inside the network" in body["errors"]["address"][0]
    assert [c["channel"] for c in worker.get(f"{N}/subscribers/{rid}/channels").json()] == ["sms"]


def test_a_webhook_saved_before_the_rule_cannot_read_an_internal_service(api, config, sql, make_token):
    """Issue 19's SSRF, sending: webhooks already stored pointing at the gateway and at a loopback listener
    (as saved before the rule) are refused by the real sender; no request reaches the listener and the
    deliveries' errors hold a fixed reason, nothing of what answers there."""
    from shared.protect import Vault
    from tests.integration.providers import WebhookReceiver
    gateway, hooked = (register(api, seq, name, phone) for seq, name, phone in
                       (("151", "吴晓红", "13912340151"), ("152", "冯志明", "13912340152")))
    for rid in (gateway, hooked):
        subscribed_with_phone(sql, rid)
    vault = Vault.from_config(config)
    with WebhookReceiver() as hooks:
        for rid, url in ((gateway, f"http://{config['WEB_SERVER_ADDRESS']}/api/v1/nodes"),
                         (hooked, hooks.url_for("/linli"))):
            sql("INSERT INTO notification.subscriber_channels (resident_id, channel, address_cipher, source) "
                "VALUES (%s, 'webhook', %s, 'given')", (rid, vault.seal(url, "notification.address")))
        checker = api.as_(make_token("street_admin", name="李明"))
        bid = api.post(f"{N}/broadcasts", json={"prefix": C1, "title": "燃气检修", "message": "明日上午燃气检修。",
                                                "channels": ["webhook"], "request_id": "ssrf-1"}).json()["id"]
        api.post(f"{N}/broadcasts/{bid}/submit")
        assert checker.post(f"{N}/broadcasts/{bid}/approve").status_code == 200

        def settled():
            items = api.get(f"{N}/broadcasts/{bid}/deliveries", params={"status": "failed"}).json()["items"]
            mine = {d["resident_id"]: d for d in items if d["resident_id"] in (gateway, hooked)}
            return len(mine) == 2 and mine
        failed = wait_for(settled, message="both webhook deliveries to fail")
        assert hooks.received == []
    for d in failed.values():
        assert d["error"] == "refused: the address must not point inside the network: 127.0.0.1 is a loopback address"
        assert d["attempts"] == 1                               # refused for good, not retried
    errors = [r["error"] for r in sql("SELECT error FROM notification.deliveries WHERE channel = 'webhook'")]
    assert not any(e and ("310110" in e or "{" in e or "nodes" in e) for e in errors)
