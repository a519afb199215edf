"""Notification subscribers and templates on real PostgreSQL, and the projection fed by the real registry.

Use-case tests run the projection and template rules against the migrated database; the last test
registers residents through the real API and waits for the notification service, consuming the
registry's events from RabbitMQ, to hold them.
"""
import pytest

from services.notification import subscribers, templates
from shared.errors import ValidationFailed
from tests.integration.conftest import wait_for

C1, C2 = "310110012001", "310110012002"


@pytest.fixture
def tx(in_tx):
    return in_tx("notification")


@pytest.fixture
def q(schema_sql):
    return schema_sql("notification")


def resident(rid=7, version=1, **over):
    return {"id": rid, "name": "王秀英", "community_code": C1, "grid_code": None, "household_id": 3,
            "tags": ["elderly_alone"], "status": "active", "version": version, **over}


def test_the_projection_only_moves_forward(tx, q):
    assert tx(subscribers.apply_resident, resident(version=2, community_code=C2)) is True
    assert tx(subscribers.apply_resident, resident(version=1)) is False           # late, older: ignored
    assert tx(subscribers.apply_resident, resident(version=2, community_code=C2)) is False   # twice: ignored
    assert q("SELECT community_code, version FROM subscribers")[0] == (C2, 2)
    tx(subscribers.apply_resident, resident(version=3, community_code=C2, status="left"))
    assert q("SELECT status FROM subscribers")[0][0] == "left"


def role_event(event_type, rid, minute):
    return {"type": event_type, "occurred_at": f"2026-11-23T10:{minute:02d}:00+08:00", "payload": {"resident_id": rid}}


def test_imports_roles_and_reach(tx, q):
    tx(subscribers.apply_import, {"residents": [resident(rid=i, community_code=C1 if i % 2 else C2,
                                                         tags=["elderly_alone"] if i % 3 == 0 else [])
                                                for i in range(1, 11)]})
    tx(subscribers.apply_role, role_event("party_member_reported", 3, 1))
    tx(subscribers.apply_role, role_event("party_member_reported", 3, 1))
    assert tx(subscribers.subscriber, 3, {"scope": "310110012", "actor": "t"})["roles"] == ["party_member"]
    assert tx(subscribers.reach, {"prefix": "310110012"}) == {C1: 5, C2: 5}
    assert tx(subscribers.reach, {"prefix": "310110012", "tags": ["elderly_alone"]}) == {C1: 2, C2: 1}
    assert tx(subscribers.reach, {"prefix": C1, "roles": ["party_member"]}) == {C1: 1}
    tx(subscribers.apply_role, role_event("party_member_withdrawn", 3, 5))
    assert tx(subscribers.reach, {"prefix": C1, "roles": ["party_member"]}) == {}
    tx(subscribers.apply_role, role_event("party_member_reported", 3, 2))   # older than the withdrawal: ignored
    assert tx(subscribers.reach, {"prefix": C1, "roles": ["party_member"]}) == {}


def test_community_workers_on_the_register_get_their_role(tx):
    tx(subscribers.apply_resident, resident(rid=41))
    appointed = {"type": "worker_appointed", "occurred_at": "2026-11-23T09:00:00+08:00",
                 "payload": {"id": 3, "resident_id": 41, "community_code": C1}}
    assert tx(subscribers.apply_role, appointed) is True
    assert tx(subscribers.apply_role, {**appointed, "payload": {"id": 4, "resident_id": None}}) is False
    assert tx(subscribers.reach, {"prefix": C1, "roles": ["community_worker"]}) == {C1: 1}
    tx(subscribers.apply_role, {**appointed, "type": "worker_left", "occurred_at": "2026-11-23T10:00:00+08:00"})
    assert tx(subscribers.reach, {"prefix": C1, "roles": ["community_worker"]}) == {}


def test_links_may_come_before_the_resident(tx):
    """Membership events travel on their own queues: one that arrives first is kept, not lost."""
    joined = {"type": "organization_member_joined", "occurred_at": "2026-11-23T10:00:00+08:00",
              "payload": {"organization_id": 4, "resident_id": 21}}
    tx(subscribers.apply_membership, joined)
    assert tx(subscribers.reach, {"prefix": "310110012", "organization_id": 4}) == {}
    tx(subscribers.apply_resident, resident(rid=21))
    assert tx(subscribers.reach, {"prefix": "310110012", "organization_id": 4}) == {C1: 1}
    left = {**joined, "type": "organization_member_left", "occurred_at": "2026-11-23T11:00:00+08:00"}
    tx(subscribers.apply_membership, left)
    tx(subscribers.apply_membership, joined)                                   # redelivered late: ignored
    assert tx(subscribers.reach, {"prefix": "310110012", "organization_id": 4}) == {}
    with pytest.raises(ValidationFailed):
        tx(subscribers.reach, {"prefix": "; DROP"})


def test_templates_are_checked_when_saved_and_versioned(tx, q):
    good = {"category": "meetings", "zh": {"subject": "{{ meeting.title }}通知",
                                           "body": "{{ name }}您好，{{ meeting.starts_at }}在{{ meeting.place }}召开"
                                                   "{{ meeting.title }}，请准时参加。"},
            "en": {"subject": "Meeting: {{ meeting.title }}",
                   "body": "Dear {{ name }}, see you at {{ meeting.place }}."}}
    saved = tx(templates.save, "meeting_scheduled", good, "token:a:王建国")   # the shipped one is version 1
    assert saved["version"] == 2 and {v["locale"] for v in saved["versions"] if v["version"] == 2} == {"zh", "en"}
    with pytest.raises(ValidationFailed) as err:      # a misspelt variable fails now, not at send time
        tx(templates.save, "meeting_scheduled", {"zh": {"subject": "通知", "body": "{{ meetng.title }}"}}, "x")
    assert "zh.body" in err.value.fields
    with pytest.raises(ValidationFailed) as err:
        tx(templates.save, "bad_syntax", {"category": "general", "zh": {"subject": "{% if %}", "body": "x"}}, "x")
    assert "zh.subject" in err.value.fields
    for broken in ("{{ 1/0 }}", "{{ name + 1 }}"):   # arithmetic that fails fails now, as a field error
        with pytest.raises(ValidationFailed) as err:
            tx(templates.save, "arith", {"category": "general", "zh": {"subject": "x", "body": broken}}, "x")
        assert "zh.body" in err.value.fields
    with pytest.raises(ValidationFailed) as err:
        tx(templates.save, "listy", {"category": ["general"], "zh": {"subject": "x", "body": "y"}}, "x")
    assert "category" in err.value.fields
    with pytest.raises(ValidationFailed) as err:      # the sandbox refuses reaching into Python internals
        tx(templates.save, "escape", {"category": "general",
                                      "zh": {"subject": "x", "body": "{{ name.__class__.__mro__ }}"}}, "x")
    assert "zh.body" in err.value.fields
    again = tx(templates.save, "meeting_scheduled", {"zh": {"subject": "会议通知", "body": "{{ name }}您好"}}, "y")
    assert again["version"] == 3
    assert q("SELECT count(*) FROM template_versions WHERE code = 'meeting_scheduled'")[0][0] == 5


def test_the_service_follows_the_registry(api, sql):
    from services.registry.identity import check_character
    first17 = "310110" + "19450817" + "024"
    body = {"name": "周桂芳", "id_number": first17 + check_character(first17), "community_code": C1,
            "residence_type": "registered", "building": "3号", "unit": "1单元", "room": "101", "relation": "self",
            "tags": ["elderly_alone"]}
    rid = api.post("/api/v1/residents", json=body).json()["id"]
    row = wait_for(lambda: sql("SELECT name, tags, status FROM notification.subscribers WHERE resident_id = %s",
                               (rid,)), message="the subscriber")[0]
    assert row == {"name": "周桂芳", "tags": ["elderly_alone"], "status": "active"}
    api.post(f"/api/v1/residents/{rid}/death", json={"date_of_death": "2026-11-01"})
    wait_for(lambda: sql("SELECT 1 FROM notification.subscribers WHERE resident_id = %s AND status = 'deceased'",
                         (rid,)), message="the death to reach the subscriber")


def test_phones_come_from_the_registry_later_and_a_given_number_wins(tx, q, cfg):
    from shared.protect import Vault
    vault = Vault.from_config(cfg)
    admin = {"actor": "t", "scope": "310110012", "role": "street_admin"}
    for rid in (31, 32):
        tx(subscribers.apply_resident, resident(rid=rid))
    tx(subscribers.request_phones, [31, 32])

    def registry_away(ids):
        raise TimeoutError("registry did not answer")
    with pytest.raises(TimeoutError):
        tx(subscribers.sync_phones, vault, registry_away)
    assert q("SELECT count(*) FROM phone_requests")[0][0] == 2           # still asked for, not lost
    tx(subscribers.set_channel, vault, 32, {"channel": "sms", "address": "13800000032"}, admin)
    asked = []
    assert tx(subscribers.sync_phones, vault, lambda ids: asked.extend(ids) or
              {"31": "13912340031", "32": "13912340099"}) == 2
    assert asked == [31, 32] and q("SELECT count(*) FROM phone_requests")[0][0] == 0
    shown = {rid: tx(subscribers.channels, vault, rid, admin)[0] for rid in (31, 32)}
    assert (shown[31]["address"], shown[31]["source"]) == ("139****0031", "registry")
    assert (shown[32]["address"], shown[32]["source"]) == ("138****0032", "given")   # the resident's own number
    tx(subscribers.request_phones, [31, 32])                                 # the registry dropped both phones
    tx(subscribers.sync_phones, vault, lambda ids: {})
    assert [r["channel"] for r in tx(subscribers.channels, vault, 31, admin)] == []   # the old number goes
    assert tx(subscribers.channels, vault, 32, admin)[0]["source"] == "given"


def test_phones_are_asked_for_with_nothing_held_and_a_request_renewed_meanwhile_stays(tx, q, cfg):
    """The registry is asked after the read's transaction ends; a request renewed while it answers
    (the phone changed again) is not settled by that older answer and stays for the next batch."""
    import psycopg
    from shared.protect import Vault
    vault = Vault.from_config(cfg)
    for rid in (41, 42, 43):
        tx(subscribers.apply_resident, resident(rid=rid))
    tx(subscribers.request_phones, [43, 42, 41])  # one now() for all three: resident_id orders them
    held = []

    def contacts(ids):
        with psycopg.connect(cfg["DATABASE_URL"], autocommit=True) as conn:
            held.extend(r[0] for r in conn.execute(
                "SELECT state FROM pg_stat_activity WHERE application_name = 'linli:notification' "
                "AND datname = current_database()"))
            conn.execute("SET lock_timeout = '2s'")  # fails, rather than hangs, if the read still held its rows
            conn.execute("UPDATE notification.phone_requests SET requested_at = now() WHERE resident_id = 42")
        return {str(i): f"1391234{i:04d}" for i in ids}

    assert tx(subscribers.sync_phones, vault, contacts, 2) == 2           # the batch is 41 and 42, by id
    assert "idle in transaction" not in held and "active" not in held, held
    assert [r[0] for r in q("SELECT resident_id FROM phone_requests ORDER BY 1")] == [42, 43]
    assert [r[0] for r in q("SELECT resident_id FROM subscriber_channels ORDER BY 1")] == [41]
    assert tx(subscribers.sync_phones, vault, lambda ids: {str(i): f"1391234{i:04d}" for i in ids}) == 2
    assert q("SELECT count(*) FROM phone_requests")[0][0] == 0
    assert [r[0] for r in q("SELECT resident_id FROM subscriber_channels ORDER BY 1")] == [41, 42, 43]
