"""The gateway's notification routes (declared in services/notification/api.py): who may do what, residents' own
tokens, receipts without a token, and the routes with a fake notification service."""
import json
import re
from unittest import mock

import pytest
from nameko.testing.services import worker_factory
from werkzeug.routing import Map, Rule

from services.gateway import auth, openapi, store
from services.gateway.http import ApiHandler, PayloadTooLarge
from services.gateway.service import GatewayService
from services.notification import api as notification_api
from services.notification import subscribers, templates
from shared.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from tests.unit.gateway_fakes import FakeTokens, http_request

ALL_NOTIFICATION = ("notification:read", "notification:write", "notification:send", "notification:organization",
                    "notification:broadcast", "notification:approve", "notification:admin", "notification:self")
ALLOWED = {
    "street_admin": set(ALL_NOTIFICATION) - {"notification:self"},
    "community_worker": {"notification:read", "notification:write", "notification:send",
                         "notification:organization", "notification:broadcast"},
    "organization_leader": {"notification:organization"},
    "resident": {"notification:self"},
    "district_analyst": set(),
    "department_feed": set(),
    "operator": set(),
}
IDS = {"organization_leader": (7, None), "resident": (None, 42)}


def principal_of(role, prefix="310110012003"):
    organization_id, resident_id = IDS.get(role, (None, None))
    return auth.Principal("t1", "x", role, prefix, organization_id, resident_id)


@pytest.mark.parametrize("role", auth.ROLES)
def test_notification_permissions_per_role(role):
    principal = principal_of(role)
    for permission in ALL_NOTIFICATION:
        if permission in ALLOWED[role]:
            auth.authorize(principal, permission, "310110012003")
        else:
            with pytest.raises(Forbidden, match="may not"):
                auth.authorize(principal, permission, "310110012003")


def test_a_residents_token_does_nothing_but_its_own_notices_and_settings():
    assert {p for p, roles in auth.PERMISSIONS.items() if "resident" in roles} == {"notification:self"}
    with pytest.raises(Forbidden):
        auth.authorize(principal_of("resident"), "nodes:read", "310110012003")


def test_a_residents_token_names_exactly_one_resident_and_reaches_one_community():
    auth.validate_grant("王秀英", "resident", "310110012003", "310110012", resident_id=42)
    with pytest.raises(ValidationFailed) as err:
        auth.validate_grant("王秀英", "resident", "310110012003", "310110012")
    assert set(err.value.fields) == {"resident_id"}
    for bad in (0, -3, True, "42", 4.0, 2 ** 63):
        with pytest.raises(ValidationFailed) as err:
            auth.validate_grant("王秀英", "resident", "310110012003", "310110012", resident_id=bad)
        assert set(err.value.fields) == {"resident_id"}
    for prefix in ("310110012", "310110012003001"):  # a street, a grid: a resident's token is for their community
        with pytest.raises(ValidationFailed) as err:
            auth.validate_grant("王秀英", "resident", prefix, "310110012", resident_id=42)
        assert set(err.value.fields) == {"node_prefix"}
    with pytest.raises(ValidationFailed) as err:  # outside the instance: that message, not the 12-digit one
        auth.validate_grant("王秀英", "resident", "310110013003", "310110012", resident_id=42)
    assert err.value.fields["node_prefix"] == ["must lie inside this instance (310110012)"]
    for role, organization_id in (("community_worker", None), ("organization_leader", 7)):
        with pytest.raises(ValidationFailed) as err:
            auth.validate_grant("社工", role, "310110012003", "310110012", organization_id, 42)
        assert set(err.value.fields) == {"resident_id"}
    with pytest.raises(ValidationFailed) as err:
        auth.validate_grant("王秀英", "resident", "310110012003", "310110012", 7, 42)
    assert set(err.value.fields) == {"organization_id"}


def test_the_store_carries_the_resident_both_ways():
    conn = mock.Mock()
    store.add(conn, "a1b2c3d4", "lnl_secret", "王秀英", "resident", "310110012003", None, None, 42)
    sql, params = conn.execute.call_args.args
    assert "resident_id" in sql and params[-2:] == (42, None)
    store.add(conn, "a1b2c3d4", "lnl_secret", "队长", "organization_leader", "310110012003", None, 7)
    assert conn.execute.call_args.args[1][-2:] == (None, 7)
    conn.execute.return_value.fetchone.return_value = {
        "token_id": "a1b2c3d4", "name": "王秀英", "role": "resident", "node_prefix": "310110012003",
        "organization_id": None, "resident_id": 42}
    principal = store.principal_for(conn, "lnl_secret")
    assert principal.resident_id == 42 and principal.organization_id is None
    assert "resident_id" in conn.execute.call_args.args[0]


# -- routes, with worker_factory: a fake token store and a fake notification service --------------------

ROUTE_ROLES = ("street_admin", "community_worker", "organization_leader", "resident", "district_analyst")
TOKENS = {role: auth.new_token()[1] for role in ROUTE_ROLES}
PRINCIPALS = {
    "street_admin": auth.Principal("a1b2c3d4", "街道管理员", "street_admin", "310110012"),
    "community_worker": auth.Principal("b1b2c3d4", "社工", "community_worker", "310110012003"),
    "organization_leader": auth.Principal("c1b2c3d4", "志愿者队长", "organization_leader", "310110012003", 7),
    "resident": auth.Principal("e1b2c3d4", "王秀英", "resident", "310110012003", None, 42),
    "district_analyst": auth.Principal("d1b2c3d4", "区分析员", "district_analyst", "310110"),
}
ADMIN_CALLER = {"actor": "token:a1b2c3d4:街道管理员", "scope": "310110012", "role": "street_admin",
                "organization_id": None}
WORKER_CALLER = {"actor": "token:b1b2c3d4:社工", "scope": "310110012003", "role": "community_worker",
                 "organization_id": None}
LEADER_CALLER = {"actor": "token:c1b2c3d4:志愿者队长", "scope": "310110012003", "role": "organization_leader",
                 "organization_id": 7}
RESIDENT_CALLER = {"actor": "token:e1b2c3d4:王秀英", "scope": "310110012003", "role": "resident",
                   "organization_id": None, "resident_id": 42}


def request(*args, **kwargs):
    return http_request(TOKENS, *args, **kwargs)
@pytest.fixture
def tokens():
    return FakeTokens(TOKENS, PRINCIPALS)


@pytest.fixture
def gateway(tokens):
    return worker_factory(GatewayService, db=tokens)


def _routes(cls=GatewayService):
    """(method name, HTTP method, url) of every route `cls` defines."""
    for name in dir(cls):
        for ext in getattr(getattr(cls, name), "nameko_entrypoints", ()):
            if isinstance(ext, ApiHandler):
                for method in ext.method.split(","):
                    yield name, method, ext.url


def _url_map():
    return Map([Rule(url, methods=[method], endpoint=name) for name, method, url in _routes()]).bind("localhost")


SAMPLE = {"resident_id": 42, "delivery_id": 9, "broadcast_id": 3, "notice_id": 5, "organization_id": 7,
          "channel": "sms", "code": "notice", "provider": "sms_main"}


def _call(gateway, name, method, url, role, body=None):
    """Call the route's method as nameko would, its path filled with sample values."""
    args = {}

    def fill(match):
        conv, key = match.groups()
        args[key] = SAMPLE.get(key, 1 if conv == "int" else "x")
        return str(args[key])

    path = re.sub(r"<(int|string):(\w+)>", fill, url)
    body = {} if body is None and method in ("POST", "PUT", "PATCH") else body
    return getattr(gateway, name)(request(method, path, body, role), **args)


NOTIFICATION_ROUTES = sorted((op.handler_name, op.method, op.path) for op in notification_api.OPERATIONS)
ME_ROUTES = [r for r in NOTIFICATION_ROUTES if r[2].startswith("/api/v1/me/")]
OPEN_ROUTES = {"notification_receipts", "public_results", "healthz", "readyz", "metrics", "openapi", "not_found",
               # The console's pages, and the session routes: these read a session cookie, never a token.
               "console_home", "console_bare", "console_index", "console_file",
               "sign_in", "current_session", "sign_out", "change_password"}
# Routes that read and check their input before the token (the same 422 for anyone).
CHECKS_INPUT_FIRST = {"meeting_tally"}


def test_the_notification_routes_are_all_there():
    assert len(NOTIFICATION_ROUTES) == 31 and len(ME_ROUTES) == 7


@pytest.mark.parametrize("name, method, url", [r for r in _routes() if r[0] not in OPEN_ROUTES | CHECKS_INPUT_FIRST
                                               and not r[2].startswith("/api/v1/me/")])
def test_a_residents_token_is_refused_everywhere_but_me(gateway, name, method, url):
    with pytest.raises(Forbidden, match="may not"):
        _call(gateway, name, method, url, "resident")
    assert not gateway.notification.mock_calls and not gateway.registry.mock_calls


@pytest.mark.parametrize("name, method, url", [r for r in NOTIFICATION_ROUTES
                                               if r[0] not in ("send_organization_notice", "notification_receipts")])
def test_a_leader_only_notifies_their_organisation(gateway, name, method, url):
    with pytest.raises(Forbidden, match="may not"):
        _call(gateway, name, method, url, "organization_leader")
    assert not gateway.notification.mock_calls


@pytest.mark.parametrize("name, method, url", [r for r in NOTIFICATION_ROUTES if r[0] != "notification_receipts"])
def test_analysts_get_nothing_here(gateway, name, method, url):
    with pytest.raises(Forbidden, match="may not"):
        _call(gateway, name, method, url, "district_analyst")
    with pytest.raises(Unauthorized):
        _call(gateway, name, method, url, None)
    assert not gateway.notification.mock_calls


@pytest.mark.parametrize("name, method, url", ME_ROUTES)
def test_staff_tokens_do_not_reach_the_me_routes(gateway, name, method, url):
    for role in ("street_admin", "community_worker", "organization_leader"):
        with pytest.raises(Forbidden, match="may not"):
            _call(gateway, name, method, url, role)
    assert not gateway.notification.mock_calls


PREFS = {"opted_out": ["points:sms"], "quiet_start": "22:00", "quiet_end": "07:00", "locale": "zh"}
CHANNELS = [{"channel": "sms", "address": "138****5678", "source": "given", "updated_at": "2026-12-01T08:00:00+00:00"}]


def test_the_me_routes_act_for_the_tokens_resident(gateway):
    """The `/me` RPCs take no resident: the service reads it from the caller, the token's own."""
    n = gateway.notification
    n.my_inbox.return_value = {"items": [], "unread": 0, "next": None}
    resp = gateway.my_inbox(request("GET", "/api/v1/me/inbox", role="resident", query={"unread": "true"}))
    assert resp.status_code == 200 and json.loads(resp.get_data())["unread"] == 0
    n.my_inbox.assert_called_once_with({"unread": "true"}, RESIDENT_CALLER)

    n.my_mark_read.return_value = {"id": 9, "status": "read"}
    gateway.my_mark_read(request("POST", "/api/v1/me/inbox/9/read", role="resident"), delivery_id=9)
    n.my_mark_read.assert_called_once_with(9, RESIDENT_CALLER)

    n.my_preferences.return_value = n.set_my_preferences.return_value = PREFS
    resp = gateway.my_preferences(request("GET", "/api/v1/me/preferences", role="resident"))
    n.my_preferences.assert_called_once_with(RESIDENT_CALLER)
    assert json.loads(resp.get_data()) == PREFS  # "22:00" as sent, not a re-formatted time
    prefs = {"opted_out": ["points:sms"], "quiet_start": "22:00", "quiet_end": "07:00"}
    gateway.set_my_preferences(request("PUT", "/api/v1/me/preferences", prefs, role="resident"))
    n.set_my_preferences.assert_called_once_with(prefs, RESIDENT_CALLER)

    for rpc in (n.my_channels, n.set_my_channel, n.remove_my_channel):
        rpc.return_value = CHANNELS
    resp = gateway.my_channels(request("GET", "/api/v1/me/channels", role="resident"))
    n.my_channels.assert_called_once_with(RESIDENT_CALLER)
    assert json.loads(resp.get_data()) == CHANNELS
    channel = {"channel": "sms", "address": "13812345678"}
    gateway.set_my_channel(request("PUT", "/api/v1/me/channels", channel, role="resident"))
    n.set_my_channel.assert_called_once_with(channel, RESIDENT_CALLER)
    gateway.remove_my_channel(request("DELETE", "/api/v1/me/channels/email", role="resident"), channel="email")
    n.remove_my_channel.assert_called_once_with("email", RESIDENT_CALLER)


def test_the_me_rpcs_act_only_for_a_residents_token_and_its_own_resident():
    assert subscribers.own(RESIDENT_CALLER) == 42
    for caller in ({**RESIDENT_CALLER, "resident_id": None}, {k: v for k, v in RESIDENT_CALLER.items()
                                                             if k != "resident_id"}, WORKER_CALLER):
        with pytest.raises(Forbidden, match="names no resident"):
            subscribers.own(caller)


def test_a_resident_named_in_the_body_is_refused(gateway):
    body = {"channel": "sms", "address": "13812345678", "resident_id": 43}
    with pytest.raises(ValidationFailed) as err:
        gateway.set_my_channel(request("PUT", "/api/v1/me/channels", body, role="resident"))
    assert set(err.value.fields) == {"resident_id"}
    assert not gateway.notification.mock_calls


def test_workers_act_for_the_resident_the_path_names(gateway):
    n = gateway.notification
    n.get_subscriber.return_value = {"resident_id": 43, "name": "王秀英", "tags": []}
    n.inbox.return_value = {"items": [], "unread": 0, "next": None}
    n.mark_read.return_value = {"id": 9, "status": "read"}
    n.set_channel.return_value = n.remove_channel.return_value = CHANNELS
    n.set_preferences.return_value = PREFS
    gateway.get_subscriber(request("GET", "/api/v1/subscribers/43", role="community_worker"), resident_id=43)
    n.get_subscriber.assert_called_once_with(43, WORKER_CALLER)
    gateway.subscriber_inbox(request("GET", "/api/v1/subscribers/43/inbox", role="community_worker",
                                     query={"limit": "10"}), resident_id=43)
    n.inbox.assert_called_once_with(43, {"limit": "10"}, WORKER_CALLER)
    gateway.subscriber_mark_read(request("POST", "/api/v1/subscribers/43/inbox/9/read", role="community_worker"),
                                 resident_id=43, delivery_id=9)
    n.mark_read.assert_called_once_with(43, 9, WORKER_CALLER)
    gateway.set_subscriber_channel(request("PUT", "/api/v1/subscribers/43/channels",
                                           {"channel": "wechat", "address": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"},
                                           role="community_worker"), resident_id=43)
    n.set_channel.assert_called_once_with(43, {"channel": "wechat", "address": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"},
                                          WORKER_CALLER)
    gateway.remove_subscriber_channel(request("DELETE", "/api/v1/subscribers/43/channels/wechat",
                                              role="community_worker"), resident_id=43, channel="wechat")
    n.remove_channel.assert_called_once_with(43, "wechat", WORKER_CALLER)
    gateway.set_subscriber_preferences(request("PUT", "/api/v1/subscribers/43/preferences", {"locale": "en"},
                                               role="street_admin"), resident_id=43)
    n.set_preferences.assert_called_once_with(43, {"locale": "en"}, ADMIN_CALLER)


def test_broadcasts_two_people(gateway):
    n = gateway.notification
    body = {"prefix": "310110012003", "title": "台风防御通知", "message": "请关好门窗", "request_id": "b1"}
    n.create_broadcast.return_value = {"id": 3, "status": "draft"}
    resp = gateway.create_broadcast(request("POST", "/api/v1/broadcasts", body, "community_worker"))
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/broadcasts/3"
    n.create_broadcast.assert_called_once_with(body, WORKER_CALLER)
    n.create_broadcast.return_value = {"id": 3, "status": "draft", "replayed": True}
    resp = gateway.create_broadcast(request("POST", "/api/v1/broadcasts", body, "community_worker"))
    assert resp.status_code == 200 and json.loads(resp.get_data())["replayed"] is True
    for rpc in (n.edit_broadcast, n.submit_broadcast, n.approve_broadcast, n.reject_broadcast, n.cancel_broadcast,
                n.get_broadcast):
        rpc.return_value = {"id": 3, "status": "draft", "rollup": None}
    n.list_broadcasts.return_value = n.broadcast_deliveries.return_value = {"items": [], "next": None}

    gateway.edit_broadcast(request("PATCH", "/api/v1/broadcasts/3", {"title": "台风“梅花”防御通知"},
                                   "community_worker"), broadcast_id=3)
    n.edit_broadcast.assert_called_once_with(3, {"title": "台风“梅花”防御通知"}, WORKER_CALLER)
    # Submitting and approving take no body: an empty one is fine.
    gateway.submit_broadcast(request("POST", "/api/v1/broadcasts/3/submit", role="community_worker"), broadcast_id=3)
    n.submit_broadcast.assert_called_once_with(3, WORKER_CALLER)
    for route, path in [(gateway.approve_broadcast, "approve"), (gateway.reject_broadcast, "reject")]:
        with pytest.raises(Forbidden, match="notification:approve"):
            route(request("POST", f"/api/v1/broadcasts/3/{path}", {"reason": "x"}, "community_worker"),
                  broadcast_id=3)
    assert not n.approve_broadcast.called and not n.reject_broadcast.called
    gateway.approve_broadcast(request("POST", "/api/v1/broadcasts/3/approve"), broadcast_id=3)
    n.approve_broadcast.assert_called_once_with(3, ADMIN_CALLER)
    gateway.reject_broadcast(request("POST", "/api/v1/broadcasts/3/reject", {"reason": "范围太大"}), broadcast_id=3)
    n.reject_broadcast.assert_called_once_with(3, {"reason": "范围太大"}, ADMIN_CALLER)
    gateway.cancel_broadcast(request("POST", "/api/v1/broadcasts/3/cancel", {"reason": "台风转向"},
                                     "community_worker"), broadcast_id=3)
    n.cancel_broadcast.assert_called_once_with(3, {"reason": "台风转向"}, WORKER_CALLER)

    gateway.list_broadcasts(request("GET", "/api/v1/broadcasts", role="community_worker",
                                    query={"status": "sent", "limit": "5"}))
    n.list_broadcasts.assert_called_once_with({"status": "sent", "limit": "5"}, WORKER_CALLER)
    gateway.get_broadcast(request("GET", "/api/v1/broadcasts/3", role="community_worker"), broadcast_id=3)
    n.get_broadcast.assert_called_once_with(3, WORKER_CALLER)
    gateway.broadcast_deliveries(request("GET", "/api/v1/broadcasts/3/deliveries", role="community_worker",
                                         query={"status": "failed"}), broadcast_id=3)
    n.broadcast_deliveries.assert_called_once_with(3, {"status": "failed"}, WORKER_CALLER)


def test_the_area_named_is_checked_before_the_service_is_asked(gateway):
    for route, path, method in [(gateway.create_broadcast, "/api/v1/broadcasts", "POST"),
                                (gateway.send_notice, "/api/v1/notices", "POST")]:
        with pytest.raises(Forbidden) as err:
            route(request(method, path, {"prefix": "310110012004"}, "community_worker"))
        assert set(err.value.fields) == {"prefix"}
    with pytest.raises(Forbidden) as err:
        gateway.edit_broadcast(request("PATCH", "/api/v1/broadcasts/3", {"prefix": "3101"}, "community_worker"),
                               broadcast_id=3)
    assert set(err.value.fields) == {"prefix"}
    with pytest.raises(Forbidden) as err:
        gateway.list_broadcasts(request("GET", "/api/v1/broadcasts", role="community_worker",
                                        query={"under": "310110012004"}))
    assert set(err.value.fields) == {"under"}
    with pytest.raises(Forbidden) as err:
        gateway.notice_reach(request("GET", "/api/v1/notices/reach", role="community_worker",
                                     query={"prefix": "310110012"}))
    assert set(err.value.fields) == {"prefix"}
    assert not gateway.notification.mock_calls


def test_a_prefix_that_is_not_a_string_is_refused_by_the_declared_schema(gateway):
    with pytest.raises(ValidationFailed) as err:
        gateway.send_notice(request("POST", "/api/v1/notices", {"prefix": 310110012003}, "community_worker"))
    assert "prefix" in err.value.fields
    assert not gateway.notification.mock_calls


def test_notices(gateway):
    n = gateway.notification
    body = {"prefix": "310110012003", "tags": ["elderly_alone"], "title": "义诊", "message": "周六义诊",
            "request_id": "n1"}
    n.send_notice.return_value = {"id": 5, "deliveries_added": 12, "replayed": False}
    resp = gateway.send_notice(request("POST", "/api/v1/notices", body, "community_worker"))
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/notices/5"
    n.send_notice.assert_called_once_with(body, WORKER_CALLER)
    n.send_notice.return_value = {"id": 5, "deliveries_added": 0, "replayed": True}
    assert gateway.send_notice(request("POST", "/api/v1/notices", body, "community_worker")).status_code == 200
    n.get_notice.return_value = {"id": 5, "channels": ["inbox", "wechat"], "table_column": "not documented"}
    resp = gateway.get_notice(request("GET", "/api/v1/notices/5", role="community_worker"), notice_id=5)
    n.get_notice.assert_called_once_with(5, WORKER_CALLER)
    # Exactly the documented fields: `channels` is documented, a column that is not is not sent.
    assert json.loads(resp.get_data()) == {"id": 5, "channels": ["inbox", "wechat"]}


def test_a_leader_notifies_their_own_organisation_only(gateway):
    n = gateway.notification
    body = {"notice": "周六上午8点集合", "request_id": "o1"}
    n.send_organization_notice.return_value = {"id": 6, "deliveries_added": 4}
    resp = gateway.send_organization_notice(request("POST", "/api/v1/organizations/7/notices", body,
                                                    "organization_leader"), organization_id=7)
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/notices/6"
    n.send_organization_notice.assert_called_once_with(7, body, LEADER_CALLER)
    # The caller names the leader's organisation; the service refuses another (notices.organization_notice).
    n.send_organization_notice.side_effect = Forbidden("a leader notifies their own organisation's members",
                                                       {"organization_id": ["not the organisation this token leads"]})
    with pytest.raises(Forbidden) as err:
        gateway.send_organization_notice(request("POST", "/api/v1/organizations/8/notices", body,
                                                 "organization_leader"), organization_id=8)
    assert set(err.value.fields) == {"organization_id"}
    n.send_organization_notice.assert_called_with(8, body, LEADER_CALLER)
    n.send_organization_notice.side_effect = None
    gateway.send_organization_notice(request("POST", "/api/v1/organizations/8/notices", body, "community_worker"),
                                     organization_id=8)
    n.send_organization_notice.assert_called_with(8, body, WORKER_CALLER)


def test_reach_counts_within_the_tokens_scope(gateway):
    n = gateway.notification
    n.reach.return_value = {"310110012003": 412}
    resp = gateway.notice_reach(request("GET", "/api/v1/notices/reach", role="community_worker",
                                        query="prefix=310110012003&tags=elderly_alone,disabled&tags=elderly_alone"
                                              "&roles=party_member"))
    assert resp.status_code == 200 and json.loads(resp.get_data()) == {"310110012003": 412}
    n.reach.assert_called_once_with({"prefix": "310110012003", "tags": ["elderly_alone", "disabled"],
                                     "roles": ["party_member"]})
    # No prefix: the token's scope, never the whole database.
    gateway.notice_reach(request("GET", "/api/v1/notices/reach", role="community_worker"))
    n.reach.assert_called_with({"prefix": "310110012003", "tags": [], "roles": []})
    gateway.notice_reach(request("GET", "/api/v1/notices/reach", query={"prefix": ""}))
    n.reach.assert_called_with({"prefix": "310110012", "tags": [], "roles": []})


@pytest.mark.parametrize("query, field", [({"tags": "Elderly"}, "tags"), ({"tags": "a'--"}, "tags"),
                                          ({"tags": ",".join(f"t{i:02}" for i in range(11))}, "tags"),
                                          ({"roles": "mayor"}, "roles")])
def test_reach_refuses_a_bad_audience_before_any_rpc(gateway, query, field):
    with pytest.raises(ValidationFailed) as err:
        gateway.notice_reach(request("GET", "/api/v1/notices/reach", role="community_worker", query=query))
    assert set(err.value.fields) == {field}
    assert not gateway.notification.mock_calls


def test_templates(gateway):
    n = gateway.notification
    n.get_template.return_value = n.save_template.return_value = {"code": "notice", "version": 1}
    gateway.get_notification_template(request("GET", "/api/v1/notification/templates/notice",
                                              role="community_worker"), code="notice")
    n.get_template.assert_called_once_with("notice")
    body = {"zh": {"subject": "{{ title }}", "body": "{{ name }}：{{ message }}"}}
    with pytest.raises(Forbidden, match="notification:admin"):
        gateway.save_notification_template(request("PUT", "/api/v1/notification/templates/notice", body,
                                                    "community_worker"), code="notice")
    gateway.save_notification_template(request("PUT", "/api/v1/notification/templates/notice", body),
                                       code="notice")
    n.save_template.assert_called_once_with("notice", body, ADMIN_CALLER)
    with pytest.raises(ValidationFailed) as err:  # the declared body: a Chinese variant is required
        gateway.save_notification_template(request("PUT", "/api/v1/notification/templates/notice",
                                                    {"en": body["zh"]}), code="notice")
    assert set(err.value.fields) == {"zh"}
    assert n.save_template.call_count == 1


@pytest.mark.parametrize("bad", ["Notice", "n", "notice-1", "x" * 61, "通知"])
def test_a_template_code_the_table_would_refuse_is_a_422_before_any_query(bad):
    tx = mock.Mock()
    for call in (lambda: templates.get(tx, bad), lambda: templates.save(tx, bad, {}, "actor")):
        with pytest.raises(ValidationFailed) as err:
            call()
        assert set(err.value.fields) == {"code"}
    assert not tx.mock_calls


SIGNED = "sha256=" + "ab" * 32


def test_receipts_need_no_token_and_go_over_as_the_raw_text(gateway, tokens):
    gateway.notification.receipts.return_value = {"applied": 1, "ignored": 0, "waiting": 0}
    raw = '{"receipts":  [{"id": "m-1", "status": "delivered", "note": "送达"}]}'
    resp = gateway.notification_receipts(request("POST", "/api/v1/notification/receipts/sms_main", role=None,
                                                 data=raw.encode("utf-8"),
                                                 headers={"X-Linli-Signature": SIGNED}), provider="sms_main")
    assert resp.status_code == 200 and json.loads(resp.get_data())["applied"] == 1
    # Byte for byte as sent (spacing, key order, non-ASCII), so the signature can be checked over it.
    gateway.notification.receipts.assert_called_once_with("sms_main", raw, SIGNED)
    assert tokens.lookups == 0
    # A token sent anyway is not even looked at; no signature goes over as None for the service to refuse.
    gateway.notification_receipts(request("POST", "/api/v1/notification/receipts/sms_main", role="street_admin",
                                          data=b"{}"), provider="sms_main")
    gateway.notification.receipts.assert_called_with("sms_main", "{}", None)
    assert tokens.lookups == 0


def test_a_wrong_signature_is_the_services_401(gateway):
    gateway.notification.receipts.side_effect = Unauthorized("not signed", {"X-Linli-Signature": ["wrong"]})
    with pytest.raises(Unauthorized) as err:
        gateway.notification_receipts(request("POST", "/api/v1/notification/receipts/sms_main", role=None,
                                              data=b"{}", headers={"X-Linli-Signature": "sha256=00"}),
                                      provider="sms_main")
    assert ApiHandler("POST", "/x").response_from_exception(err.value).status_code == 401


def test_receipts_bodies_are_limited_and_must_be_text(gateway):
    with pytest.raises(PayloadTooLarge) as err:
        gateway.notification_receipts(request("POST", "/api/v1/notification/receipts/sms_main", role=None,
                                              data=b" " * (1024 * 1024 + 1)), provider="sms_main")
    resp = ApiHandler("POST", "/x").response_from_exception(err.value)
    assert resp.status_code == 413 and resp.mimetype == "application/problem+json"
    with pytest.raises(ValidationFailed) as err:
        gateway.notification_receipts(request("POST", "/api/v1/notification/receipts/sms_main", role=None,
                                              data=b'{"receipts": "\xff"}'), provider="sms_main")
    assert set(err.value.fields) == {"_body"}
    assert not gateway.notification.mock_calls


@pytest.mark.parametrize("exc, status", [(NotFound("no broadcast 3", {"broadcast_id": ["no broadcast 3"]}), 404),
                                         (Conflict("already sent", {"status": ["sent"]}), 409),
                                         (ValidationFailed("bad", {"reason": ["required"]}), 422),
                                         (Forbidden("author", {"actor": ["the author may not approve"]}), 403)])
def test_the_services_refusals_map_to_problems(gateway, exc, status):
    gateway.notification.approve_broadcast.side_effect = exc
    with pytest.raises(type(exc)) as err:
        gateway.approve_broadcast(request("POST", "/api/v1/broadcasts/3/approve"), broadcast_id=3)
    resp = ApiHandler("POST", "/x").response_from_exception(err.value)
    problem = json.loads(resp.get_data())
    assert resp.status_code == status and problem["status"] == status and problem["errors"] == exc.fields


def test_a_stopped_notification_service_is_504_outcome_unknown(gateway):
    import eventlet
    gateway.notification.get_broadcast.side_effect = eventlet.Timeout
    with pytest.raises(Exception) as err:
        gateway.get_broadcast(request("GET", "/api/v1/broadcasts/3"), broadcast_id=3)
    # It was asked and did not answer: what it did is unknown (shared.errors.OutcomeUnknown).
    assert ApiHandler("GET", "/x").response_from_exception(err.value).status_code == 504


def test_only_residents_tokens_send_a_resident_id():
    callers = {role: GatewayService._caller(p) for role, p in PRINCIPALS.items()}
    assert callers["resident"] == RESIDENT_CALLER
    assert all("resident_id" not in c for role, c in callers.items() if role != "resident")


@pytest.mark.parametrize("method, path, endpoint, args", [
    ("GET", "/api/v1/notices/reach", "notice_reach", {}),
    ("GET", "/api/v1/notices/5", "get_notice", {"notice_id": 5}),
    ("POST", "/api/v1/organizations/7/notices", "send_organization_notice", {"organization_id": 7}),
    ("GET", "/api/v1/me/inbox", "my_inbox", {}),
    ("POST", "/api/v1/me/inbox/9/read", "my_mark_read", {"delivery_id": 9}),
    ("DELETE", "/api/v1/me/channels/sms", "remove_my_channel", {"channel": "sms"}),
    ("POST", "/api/v1/subscribers/42/inbox/9/read", "subscriber_mark_read", {"resident_id": 42, "delivery_id": 9}),
    ("POST", "/api/v1/broadcasts/3/approve", "approve_broadcast", {"broadcast_id": 3}),
    ("PUT", "/api/v1/notification/templates/notice", "save_notification_template", {"code": "notice"}),
    ("POST", "/api/v1/notification/receipts/sms_main", "notification_receipts", {"provider": "sms_main"}),
])
def test_the_routes_do_not_collide(method, path, endpoint, args):
    assert _url_map().match(path, method=method) == (endpoint, args)


def test_the_notification_routes_are_documented():
    spec = openapi.build("test")
    paths = spec["paths"]
    for name, method, url in NOTIFICATION_ROUTES:
        path = url.replace("<int:", "{").replace("<string:", "{").replace(">", "}")
        op = paths[path][method.lower()]
        assert op["tags"] == ["broadcasts" if path.startswith("/api/v1/broadcasts") else "notification"], path
        if name != "notification_receipts":
            assert op["security"] == [{"bearer": []}, {"session": []}] and "403" in op["responses"], path
    receipts = paths["/api/v1/notification/receipts/{provider}"]["post"]
    assert receipts["security"] == [] and "403" not in receipts["responses"]
    assert {"401", "413"} <= set(receipts["responses"])
    header = [p for p in receipts["parameters"] if p["in"] == "header"]
    assert header[0]["name"] == "X-Linli-Signature" and header[0]["required"] is True
    assert receipts["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Receipts"}
    assert paths["/api/v1/broadcasts"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BroadcastDraft"}
    draft = spec["components"]["schemas"]["BroadcastDraft"]
    assert set(draft["required"]) == {"prefix", "title", "message"}
    assert {t["name"] for t in spec["tags"]} >= {"broadcasts", "notification"}


# -- a broadcast sent down the hierarchy: its roll-up comes from the aggregator -------------------------------

OWN_ROLLUP = {"source": "deliveries", "streets": [], "communities": [], "total": {"targeted": 0, "reached": 0,
                                                                                  "read": 0}, "channels": {}}
DIRECTIVE_FIGURES = {"directive_id": "310110:broadcast:3", "node": "310110",
                     "total": {"targeted": 9, "reached": 8, "read": 5},
                     "streets": [{"street_code": "310110012", "targeted": 9, "reached": 8, "read": 5}],
                     "communities": [{"community_code": "310110012003", "targeted": 9, "reached": 8, "read": 5}]}


def test_a_broadcast_sent_down_shows_the_streets_figures_from_the_roll_ups(gateway):
    gateway.notification.get_broadcast.return_value = {"id": 3, "sent_down_as": "310110:broadcast:3",
                                                       "rollup": OWN_ROLLUP}
    gateway.aggregator.directive_figures.return_value = DIRECTIVE_FIGURES
    resp = gateway.get_broadcast(request("GET", "/api/v1/broadcasts/3"), broadcast_id=3)
    rollup = json.loads(resp.get_data())["rollup"]
    gateway.aggregator.directive_figures.assert_called_once_with("310110:broadcast:3", ADMIN_CALLER)
    assert rollup == {**OWN_ROLLUP, "source": "rollups", "streets": DIRECTIVE_FIGURES["streets"],
                      "communities": DIRECTIVE_FIGURES["communities"], "total": DIRECTIVE_FIGURES["total"]}


def test_a_streets_own_broadcast_is_counted_from_its_deliveries_alone(gateway):
    gateway.notification.get_broadcast.return_value = {"id": 3, "sent_down_as": None, "rollup": OWN_ROLLUP}
    resp = gateway.get_broadcast(request("GET", "/api/v1/broadcasts/3"), broadcast_id=3)
    assert json.loads(resp.get_data())["rollup"] == OWN_ROLLUP and not gateway.aggregator.mock_calls


def test_without_the_aggregator_the_broadcast_is_still_shown_its_figures_marked_unavailable(gateway):
    import eventlet
    gateway.notification.get_broadcast.return_value = {"id": 3, "sent_down_as": "310110:broadcast:3",
                                                       "rollup": OWN_ROLLUP}
    gateway.aggregator.directive_figures.side_effect = eventlet.Timeout
    resp = gateway.get_broadcast(request("GET", "/api/v1/broadcasts/3"), broadcast_id=3)
    assert resp.status_code == 200 and json.loads(resp.get_data())["rollup"] == {**OWN_ROLLUP, "source": "unavailable"}
