"""The operator's view and the API tokens over HTTP: what an operator reads of the instance, and who may
revoke which token.

Real: every service of a street instance in this test's vhost and database behind the HTTP gateway,
PostgreSQL, RabbitMQ and its management API.
"""
from shared import facts, instance
from shared.migrations import services_with_migrations
from tests.integration.conftest import assert_problem


def token_id(token):
    return token.split("_")[1]


def test_the_instance_view_shows_outboxes_migrations_queues_and_the_key(api, config, sql, make_token):
    view = api.get("/api/v1/instance")
    assert view.status_code == 200, view.text
    body = view.json()
    assert (body["code"], body["level"]) == (config["NODE_CODE"], "street")
    # The fingerprint of the key the instance signs with, as its parent shows it for the child.
    assert body["key_fingerprint"] == instance.fingerprint(facts.Signer.from_config(config).public_key)
    assert len(body["key_fingerprint"].split()) == 8
    assert {o["service"] for o in body["outboxes"]} >= {"registry", "points", "consultation", "notification"}
    assert {m["service"] for m in body["migrations"]} >= set(services_with_migrations())
    assert all(m["applied"] and not m["pending"] for m in body["migrations"]), body["migrations"]
    assert body["broker"]["reachable"] and body["parent_link"] == "absent" and body["children"] == []
    assert any(q["queue"] == "registry.events.unrouted" for q in body["unrouted"])
    assert all(q["queue"].endswith(".dlq") for q in body["dead_letters"]) and body["dead_letters"]
    # An event written and not yet sent (held back from the relay) is a backlog the view counts.
    sql("INSERT INTO registry.outbox (event_id, exchange, routing_key, body, next_attempt_at) VALUES "
        "('00000000-0000-0000-0000-00000000beef', 'registry.events', 'x', '{}'::jsonb, 'infinity')")
    backlog = {o["service"]: o["backlog"] for o in api.get("/api/v1/instance").json()["outboxes"]}
    assert backlog["registry"] >= 1
    for role in ("community_worker", "district_analyst"):
        assert_problem(api.as_(make_token(role)).get("/api/v1/instance"), 403, "role")
    # An admin of one community sees nothing of the instance's insides (its children, links, queues).
    narrow = make_token("street_admin", prefix=f"{config['NODE_CODE']}001")
    assert_problem(api.as_(narrow).get("/api/v1/instance"), 403, "scope")


def test_admins_revoke_the_tokens_of_their_scope_but_not_their_peers(api, config, make_token):
    worker = make_token("community_worker", prefix=f"{config['NODE_CODE']}001", name="王丽")
    feed = make_token("department_feed", name="区民政局 数据接口")
    peer = make_token("street_admin", name="另一位管理员")
    other_street = make_token("community_worker", prefix="310110013001", name="外街道")
    listed = {t["token_id"]: t for t in api.get("/api/v1/tokens").json()}
    assert token_id(worker) in listed and token_id(feed) in listed and token_id(other_street) not in listed
    assert "token_hash" not in listed[token_id(worker)] and listed[token_id(worker)]["state"] == "active"

    assert api.as_(worker).get("/api/v1/residents").status_code == 200
    revoked = api.post(f"/api/v1/tokens/{token_id(worker)}/revoke")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert api.as_(worker).get("/api/v1/residents").status_code == 401
    # Again: the same answer, nothing else changes.
    assert api.post(f"/api/v1/tokens/{token_id(worker)}/revoke").json()["revoked_at"] == revoked.json()["revoked_at"]
    assert api.post(f"/api/v1/tokens/{token_id(feed)}/revoke").json()["state"] == "revoked"

    assert_problem(api.post(f"/api/v1/tokens/{token_id(peer)}/revoke"), 403, "role")
    assert_problem(api.post(f"/api/v1/tokens/{token_id(other_street)}/revoke"), 404, "token_id")
    assert_problem(api.post("/api/v1/tokens/0000zzzz/revoke"), 422, "token_id")
    assert_problem(api.post("/api/v1/tokens/00000000/revoke"), 404, "token_id")
    own = make_token("street_admin", name="自己")
    assert_problem(api.as_(own).post(f"/api/v1/tokens/{token_id(own)}/revoke"), 409, "token_id")
    # An operator keeps every token of the scope, an admin's included.
    operator = make_token("operator", name="运维")
    assert api.as_(operator).post(f"/api/v1/tokens/{token_id(peer)}/revoke").json()["state"] == "revoked"
    assert api.as_(peer).get("/api/v1/residents").status_code == 401
    assert_problem(api.as_(make_token("community_worker")).get("/api/v1/tokens"), 403, "role")
