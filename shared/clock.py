"""One "today" per instance: the instance's time zone (TIME_ZONE, default Asia/Shanghai).

Every date a person sends or sees - future-date checks, the day a fact is given, default
ranges of figures, deadlines - is a date in this zone, never the server's or UTC's. Code asks
`clock.today()` / `clock.now()` instead of `date.today()` or a zone of its own, so the services
of an instance agree on what day it is at 00:03 and at 23:57. Instants stored or sent between
machines stay timezone-aware (UTC is fine there); only their calendar date is taken here.
"""
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Shanghai"
_zone = ZoneInfo(DEFAULT_ZONE)


def valid_zone(name):
    """True if `name` is an IANA zone this machine knows."""
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


def configure(name):
    """Set the instance's zone (config.load does this from TIME_ZONE)."""
    global _zone
    _zone = ZoneInfo(name or DEFAULT_ZONE)


def zone():
    return _zone


def now():
    """The current instant, in the instance's zone."""
    return datetime.now(_zone)


def today():
    """The instance's calendar date now."""
    return now().date()


def local_date(moment):
    """The instance's calendar date of an aware instant (a date passes through)."""
    if isinstance(moment, datetime):
        return moment.astimezone(_zone).date()
    if isinstance(moment, date):
        return moment
    raise TypeError(f"not a date or datetime: {moment!r}")
