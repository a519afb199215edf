"""One "today" per instance (shared/clock.py), and the pure rules that take their day from it.

No I/O. time-machine freezes the clock and sets the process's zone to UTC, as a container's is,
so "today" from the machine would be the UTC date; the instance's must be the China date.
"""
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest
import time_machine

from services.notification import fanout
from services.points import rules as points_rules
from shared import clock, config

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def china():
    clock.configure("Asia/Shanghai")
    yield
    clock.configure("Asia/Shanghai")


@pytest.mark.parametrize("hour, minute", [(0, 3), (23, 57)])
def test_today_is_the_instances_date_not_the_machines(hour, minute):
    at = datetime(2026, 12, 5, hour, minute, tzinfo=SHANGHAI)
    with time_machine.travel(at.astimezone(timezone.utc), tick=False):
        assert clock.today().isoformat() == "2026-12-05"
        assert clock.now().utcoffset().total_seconds() == 8 * 3600
        assert clock.local_date(datetime.now(timezone.utc)).isoformat() == "2026-12-05"


def test_the_zone_is_the_instances_choice():
    at = datetime(2026, 12, 5, 0, 3, tzinfo=SHANGHAI)  # 2026-12-04 16:03 UTC, 11:03 in New York
    clock.configure("America/New_York")
    with time_machine.travel(at, tick=False):
        assert clock.today().isoformat() == "2026-12-04"


def test_config_sets_the_zone_and_refuses_an_unknown_one():
    env = {"LEVEL": "street", "NODE_CODE": "310110012", "AMQP_URI": "amqp://x", "DATABASE_URL": "postgresql://x/y",
           "PSEUDONYM_SECRET": "p" * 32, "HANDOVER_SECRET": "h" * 32,
           "DATA_ENCRYPTION_KEY": "A" * 43, "SIGNING_KEY": "A" * 43}
    assert config.load(environ=env)["TIME_ZONE"] == "Asia/Shanghai"
    config.load(environ={**env, "TIME_ZONE": "Asia/Urumqi"})
    assert clock.zone().key == "Asia/Urumqi"
    with pytest.raises(config.ConfigError) as err:
        config.load(environ={**env, "TIME_ZONE": "China/Beijing"})
    assert "TIME_ZONE" in err.value.problems


@pytest.mark.parametrize("hour, due_day", [(0, 5), (23, 6)])
def test_the_days_digest_is_at_the_instances_hour(hour, due_day):
    now = datetime(2026, 12, 5, hour, 3 if hour == 0 else 57, tzinfo=SHANGHAI).astimezone(timezone.utc)
    due = fanout.digest_time(now, 19)
    assert (due.astimezone(SHANGHAI).day, due.astimezone(SHANGHAI).time()) == (due_day, time(19))


def test_a_service_without_an_offset_falls_on_the_instances_day():
    assert points_rules.service_day(datetime(2026, 12, 5, 0, 1)).isoformat() == "2026-12-05"
    assert points_rules.service_day(datetime(2026, 12, 4, 16, 1, tzinfo=timezone.utc)).isoformat() == "2026-12-05"
