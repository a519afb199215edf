"""One "today" per instance: every service, with the clock frozen at 00:03 and at 23:57 China time.

Real: every service of the instance in this test's vhost behind the HTTP gateway, PostgreSQL and
RabbitMQ. Faked: only the clock of this process (time-machine moves `time.time` and friends and sets
the process's zone to UTC, as a container's is; the event loop's monotonic clock and the database's
`now()` are untouched). At 00:03 China time the UTC date is still yesterday: a service that took its
"today" from the machine refuses today's China date, or counts a fact on another day, and these
tests fail.
"""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from services.registry.identity import check_character
from shared import clock
from tests.integration.conftest import assert_problem, wait_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
COMMUNITY = "310110012001"


@pytest.fixture(params=[time(0, 3), time(23, 57)], ids=["00:03", "23:57"])
def frozen(request, api):
    """The clock at 00:03 or 23:57 China time on the real China date, ticking on from there."""
    at = datetime.combine(datetime.now(SHANGHAI).date(), request.param, SHANGHAI)
    # Travelling to the UTC instant also sets the process's zone (TZ) to UTC, as in a container.
    with time_machine.travel(at.astimezone(ZoneInfo("UTC")), tick=True):
        assert clock.today() == at.date()
        yield at


def resident(api, seq, **extra):
    first17 = "310110" + "19460705" + f"{seq:03d}"
    body = {"name": f"王秀英{seq}", "id_number": first17 + check_character(first17), "community_code": COMMUNITY,
            "residence_type": "registered", "building": "3号", "unit": "1单元", "room": f"{500 + seq}",
            "relation": "self", **extra}
    return api.post("/api/v1/residents", json=body)


def test_the_registry_takes_todays_china_date_and_refuses_tomorrows(api, frozen):
    today, tomorrow = frozen.date(), frozen.date() + timedelta(days=1)
    assert_problem(resident(api, 1, moved_in=tomorrow.isoformat()), 422, "moved_in")
    made = resident(api, 1, moved_in=today.isoformat())
    assert made.status_code == 201, made.text
    rid = made.json()["id"]

    joined = api.post("/api/v1/party-members", json={"resident_id": rid, "category": "on_the_job",
                                                     "membership_org": "上海电气集团党委", "joined_party": "1970-07-01"})
    assert joined.status_code == 201, joined.text
    assert_problem(api.post(f"/api/v1/party-members/{rid}/report",
                            json={"reported_on": tomorrow.isoformat(), "posts": ["volunteer"]}), 422, "reported_on")
    reported = api.post(f"/api/v1/party-members/{rid}/report",
                        json={"reported_on": today.isoformat(), "posts": ["volunteer"]})
    assert reported.status_code == 200, reported.text

    node = api.post("/api/v1/nodes", json={"code": "310110012006", "name": "政立路居委会",
                                           "valid_from": today.isoformat()})
    assert node.status_code == 201, node.text
    assert_problem(api.post(f"/api/v1/residents/{rid}/departure", json={"effective": tomorrow.isoformat()}),
                   422, "effective")
    left = api.post(f"/api/v1/residents/{rid}/departure", json={"effective": today.isoformat()})
    assert left.status_code == 200, left.text


def test_a_registration_is_counted_on_todays_china_date_in_the_default_range(api, frozen):
    assert resident(api, 2).status_code == 201

    def today_point():
        body = api.get("/api/v1/rollups", params={"metric": "residents", "period": "day",
                                                  "node": COMMUNITY}).json()
        assert body["end"] == frozen.date().isoformat(), body
        points = [p for s in body["series"] for p in s["points"] if p["n"]]
        return points and points[-1]
    point = wait_for(today_point, message="the registration's fact in the roll-ups")
    assert (point["period_start"], point["n"]) == (frozen.date().isoformat(), 1)


def test_a_service_record_falls_on_todays_china_date_under_todays_rule(api, frozen):
    assert api.post("/api/v1/points/categories", json={
        "code": "security_patrol", "name": "平安巡逻", "unit": "hour", "points_per_unit": 10,
        "verifier_roles": ["community_worker"]}).status_code == 201
    rid = resident(api, 3).json()["id"]
    served = frozen - timedelta(minutes=2)  # 00:01 or 23:55, China time: today either way
    record = api.post("/api/v1/points/records", json={
        "resident_id": rid, "category_code": "security_patrol", "hours": "1",
        "served_at": served.replace(tzinfo=None).isoformat(),  # no offset: read in the instance's zone
        "description": "夜间巡逻"})
    assert record.status_code == 201, record.text
    assert record.json()["served_on"] == frozen.date().isoformat()
    tomorrow = datetime.combine(frozen.date() + timedelta(days=1), time(0, 10), SHANGHAI)  # past the 5 min skew
    assert_problem(api.post("/api/v1/points/records", json={
        "resident_id": rid, "category_code": "security_patrol", "hours": "1", "served_at": tomorrow.isoformat(),
        "description": "夜间巡逻"}), 422, "served_at")


def test_a_matter_raised_now_is_in_this_years_figures_for_today(api, frozen):
    matter = api.post("/api/v1/matters", json={
        "community_code": COMMUNITY, "category": "parking", "channel": "reception_day", "building": "8号楼",
        "title": "小区夜间停车难", "description": "晚上8点后小区内车辆乱停，消防通道被占。"})
    assert matter.status_code == 201, matter.text
    assert matter.json()["raised_at"].startswith(frozen.date().isoformat()) or \
        datetime.fromisoformat(matter.json()["raised_at"]).astimezone(SHANGHAI).date() == frozen.date()
    figures = api.get("/api/v1/consultation/figures", params={"under": COMMUNITY}).json()
    assert figures["total"]["matters"] == 1, figures
