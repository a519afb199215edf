"""Many residents in one unit of work, on real PostgreSQL and RabbitMQ: asked once, not once each.

A remote question asked while a worker's transaction is open costs the worker a whole re-run
(shared/db.py), and a worker gives up past 100 of them. So code that meets many residents asks
the registry about all of them in one call. Here the real registry answers the real services:

- a meeting with a roster of 150 residents is scheduled, and the worker ran again at most once;
  residents in the wrong are each named under their own roster field, scope rules included;
- a round of the handover timer credits 150 waiting handovers (opening 150 accounts) in one run,
  with at most two re-runs;
- the phone sync fetches many batches with no re-run at all.

The re-runs are counted by `linli_worker_reruns_total`, which the worker wrapper increments on
each deferral; with one question per resident these runs failed outright (a RuntimeError, seen by
HTTP callers as a 500) or cost a re-run per batch.
"""
from datetime import timedelta

import psycopg
import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY

from services.consultation.service import ConsultationService
from services.notification import subscribers
from services.notification.service import NotificationService
from services.points.service import PointsService
from services.registry import residents
from services.registry.identity import check_character
from services.registry.service import RegistryService
from shared import clock, envelope, facts
from shared.db import transaction
from shared.errors import NotFound
from shared.messaging import apply_topology
from shared.protect import Vault
from tests.integration.conftest import wait_for

STREET, C1, C2 = "310110012", "310110012001", "310110012002"
WORKER = {"actor": "token:w1:张晓燕", "scope": C1, "role": "community_worker"}
ADMIN = {"actor": "token:a1:王建国", "scope": STREET, "role": "street_admin"}


def reruns(service, entrypoint):
    return REGISTRY.get_sample_value("linli_worker_reruns_total", {"service": service, "entrypoint": entrypoint}) or 0


def id_number(seq):
    first17 = "310110" + "19600504" + f"{seq:03d}"
    return first17 + check_character(first17)


def register(config, seqs, community=C1, quiet=True):
    """Residents on the register through the registry's own use case: {seq: resident id}.

    quiet: their resident_registered events are dropped from the registry's outbox, so only what
    the test asks for runs (points would otherwise match handovers on each registration).
    """
    vault, ids = Vault.from_config(config), {}
    with transaction(config["DATABASE_URL"], "registry", envelope.source_from_config("registry", config),
                     facts.Signer.from_config(config)) as tx:
        for seq in seqs:
            ids[seq] = residents.register(tx, vault, {
                "name": f"居民{seq:03d}", "id_number": id_number(seq), "community_code": community,
                "residence_type": "registered", "building": "8号", "unit": "1单元", "room": f"{100 + seq}",
                "relation": "self", "phone": f"1391234{seq:04d}"}, ADMIN)["id"]
        if quiet:
            tx.execute("DELETE FROM outbox")
    return ids


def start(container_factory, config, *classes):
    """The services' containers, running in this test's vhost: {service name: container}."""
    apply_topology(config, list(classes))
    containers = {cls.name: container_factory(cls, config) for cls in classes}
    for container in containers.values():
        container.start()
    return containers


# -- a meeting's roster ---------------------------------------------------------------------------------------

def agenda_item(cluster):
    matter = cluster.consultation.raise_matter(
        {"community_code": C1, "category": "parking", "channel": "reception_day", "title": "小区夜间停车难",
         "description": "晚上8点后小区内车辆乱停，消防通道被占，希望重新规划停车位。"}, WORKER)
    cluster.consultation.screen_matter(matter["id"], {"outcome": "deliberate"}, WORKER)
    return cluster.consultation.create_agenda_item({"community_code": C1, "title": "停车位重新规划",
                                                    "matter_ids": [matter["id"]]}, WORKER)["id"]


def meeting(item_id, roster, quorum=100):
    return {"community_code": C1, "title": "全体居民协商议事会", "place": "居委会二楼会议室",
            "starts_at": (clock.now() + timedelta(days=3)).isoformat(), "quorum": quorum,
            "agenda_item_ids": [item_id], "roster": roster}


def test_a_roster_of_150_residents_is_asked_about_once(container_factory, config, demo_tree, sql):
    ids = register(config, range(1, 151))
    outsider = register(config, [151], community=C2)[151]
    start(container_factory, config, RegistryService, ConsultationService)
    roster = [{"role": "resident_rep", "resident_id": rid, "name": f"居民{seq:03d}"} for seq, rid in ids.items()]
    with ClusterRpcProxy(config) as cluster:
        item_id = agenda_item(cluster)
        before = reruns("consultation", "schedule_meeting")
        scheduled = cluster.consultation.schedule_meeting(meeting(item_id, roster), WORKER)
        assert reruns("consultation", "schedule_meeting") - before <= 1   # one question, whatever the roster
        assert sorted(p["resident_id"] for p in scheduled["roster"]) == sorted(ids.values())
        # The reads are audited as one at a time would be: one row per resident, for the worker's token.
        assert sql("SELECT count(DISTINCT record_id) AS n FROM registry.audit_log WHERE actor = %s "
                   "AND action = 'read'", (WORKER["actor"],))[0]["n"] == 150

        # The scope rules hold for a batch: another community's resident reads as not found, as an unknown
        # one does, and each is named under its own roster field. Nothing is scheduled.
        wrong = roster + [{"role": "resident_rep", "resident_id": outsider, "name": "外社区"},
                          {"role": "resident_rep", "resident_id": 99999, "name": "查无此人"}]
        with pytest.raises(NotFound) as err:
            cluster.consultation.schedule_meeting(meeting(item_id, wrong[-52:], quorum=1), WORKER)
        assert err.value.fields == {"roster.50.resident_id": [f"no resident {outsider}"],
                                    "roster.51.resident_id": ["no resident 99999"]}
        with pytest.raises(NotFound):
            cluster.consultation.schedule_meeting(meeting(item_id, roster[:3] + wrong[-1:], quorum=1), WORKER)
    assert sql("SELECT count(*) AS n FROM consultation.meetings")[0]["n"] == 1


# -- the handover timer ---------------------------------------------------------------------------------------

OTHER_STREET = "310110013"


def test_one_timer_round_credits_150_handovers_with_two_questions(container_factory, config, demo_tree, sql):
    ids = register(config, range(1, 151))
    vault = Vault.from_config(config)
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as conn:
        # Recorded while the registry did not know them yet (they registered since): waiting for the timer.
        conn.cursor().executemany(
            "INSERT INTO points.handovers_in (transfer_id, person_key, from_street, amount, hours) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(f"{OTHER_STREET}:emigration:{seq}:1", vault.handover(id_number(seq)).hex(), OTHER_STREET, 10, "1.5")
             for seq in ids])
    points = start(container_factory, config, RegistryService, PointsService)["points"]
    before = reruns("points", "match_handovers")
    with entrypoint_hook(points, "match_handovers") as round_:
        round_()
    assert reruns("points", "match_handovers") - before <= 2   # who the keys name; who the new holders are
    assert sql("SELECT status, count(*) AS n FROM points.handovers_in GROUP BY status") == [
        {"status": "credited", "n": 150}]
    accounts = sql("SELECT resident_id, balance, carried_hours FROM points.accounts WHERE kind = 'person'")
    assert sorted(a["resident_id"] for a in accounts) == sorted(ids.values())
    assert {(a["balance"], str(a["carried_hours"])) for a in accounts} == {(10, "1.50")}


# -- the phone sync ------------------------------------------------------------------------------------------

def test_the_phone_sync_fetches_many_batches_without_running_again(container_factory, config, demo_tree, sql,
                                                                  monkeypatch):
    monkeypatch.setattr(subscribers, "PHONE_BATCH", 4)   # 60 phones: 15 batches, each one a re-run before
    ids = register(config, range(1, 61), quiet=False)    # their events make the notification service ask
    before = reruns("notification", "sync_phones")
    start(container_factory, config, RegistryService, NotificationService)
    wait_for(lambda: sql("SELECT count(*) AS n FROM notification.subscriber_channels WHERE channel = 'sms' "
                         "AND source = 'registry'")[0]["n"] == 60, timeout=60, message="every phone synced")
    assert sql("SELECT count(*) AS n FROM notification.phone_requests")[0]["n"] == 0
    assert sql("SELECT count(*) AS n FROM notification.subscribers")[0]["n"] == len(ids)
    assert reruns("notification", "sync_phones") - before == 0
