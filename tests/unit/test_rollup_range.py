"""A roll-up's range is checked as it will run, defaults filled in: a 422 naming the field, never a 500.

Seen: `end=9999-12-31` made the next period date(10000, 1, 1), a ValueError and a 500; and the cap on
a daily series held only when both ends were sent, so `period=day&start=0001-01-01` asked for
739,954 days. Here the query schema and the range check (figures.rollup_range) are given any query
Hypothesis can make, and whatever they let through is walked as figures.rollups walks it.
"""
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregator import figures
from shared.errors import ValidationFailed, load

TODAY = date(2026, 12, 4)


def checked(query, today=TODAY):
    return figures.rollup_range(load(figures.RollupQuerySchema, query), today)


def refused(query, today=TODAY):
    with pytest.raises(ValidationFailed) as exc:
        checked(query, today)
    assert exc.value.status == 422
    return set(exc.value.fields)


@pytest.mark.parametrize("query, field", [
    ({"end": "9999-12-31"}, "end"),
    ({"period": "year", "start": "2026-01-01", "end": "9999-12-31"}, "end"),
    ({"end": "2027-12-06"}, "end"),                                              # today + 367 days
    ({"period": "day", "start": "0001-01-01"}, "start"),                         # the 739,954 days
    ({"period": "day", "start": "2024-01-01", "end": "2025-01-01"}, "start"),    # 367 days
    ({"period": "day", "end": "2027-06-30"}, "end"),                             # from 1 January: 546 days
    ({"period": "month", "start": "2016-12-31", "end": "2026-12-31"}, "start"),  # 121 months
    ({"period": "month", "start": "0001-01-01"}, "start"),
    ({"period": "year", "start": "0001-01-01"}, "start"),
    ({"start": "2026-12-05"}, "start"),                                          # after today, the default end
    ({"start": "2026-06-02", "end": "2026-06-01"}, "start"),
    ({"end": "2025-12-31"}, "end"),                                              # before 1 January, the default start
])
def test_ranges_beyond_a_limit_are_refused_on_the_field_sent(query, field):
    assert refused({"metric": "residents", **query}) == {field}


@pytest.mark.parametrize("query, periods", [
    ({"period": "day", "start": "2024-01-01", "end": "2024-12-31"}, 366),        # a leap year, day by day
    ({"period": "month", "start": "2017-01-15", "end": "2026-12-31"}, 120),
    ({"period": "year", "start": "1927-06-01", "end": "2026-12-31"}, 100),
    ({"period": "year", "end": "2027-12-05"}, 2),                                # a year ahead, to the day
    ({"period": "day"}, 338),                                                    # 1 January to today
])
def test_ranges_at_the_limits_are_served(query, periods):
    start, end = checked({"metric": "residents", **query})
    first = figures._period_start(query["period"], start)
    assert len(figures._starts(query["period"], first, end)) == periods


DATES = st.one_of(st.dates(), st.sampled_from([date.min, date.max, date(9999, 12, 1), date(1, 1, 31)]),
                  st.dates(date(2016, 1, 1), date(2028, 12, 31)))
TEXT = st.one_of(DATES.map(date.isoformat), st.sampled_from(["10000-01-01", "2026-02-30", "", "-1", "2026-13-01"]),
                 st.text(max_size=12))


@settings(max_examples=500, deadline=None)
@given(start=st.one_of(st.none(), TEXT), end=st.one_of(st.none(), TEXT),
       period=st.one_of(st.sampled_from(["day", "month", "year"]), st.text(max_size=6)),
       today=st.dates(date(2000, 1, 1), date(2100, 12, 31)))
def test_any_range_is_served_within_bounds_or_refused_on_a_field(start, end, period, today):
    query = {"metric": "residents", "period": period}
    query.update({k: v for k, v in (("start", start), ("end", end)) if v is not None})
    try:
        first_day, last_day = checked(query, today)
    except ValidationFailed as exc:
        assert exc.status == 422 and exc.fields and set(exc.fields) <= {"start", "end", "period"}, exc.fields
        return
    # Let through: walked as figures.rollups and figures._cells walk it, in bounds.
    assert first_day <= last_day <= today + timedelta(days=figures.MAX_AHEAD_DAYS)
    first = figures._period_start(period, first_day)
    starts = figures._starts(period, first, last_day)
    assert 1 <= len(starts) <= figures.MAX_PERIODS[period]
    for _, a, b in figures._spans(period, first, last_day):
        assert a <= b


@settings(max_examples=200, deadline=None)
@given(year=st.one_of(st.integers(), st.text(max_size=25)))
def test_any_headline_year_is_a_year_or_refused_on_the_field(year):
    try:
        q = load(figures.HeadlineQuerySchema, {"year": year})
    except ValidationFailed as exc:
        assert set(exc.fields) == {"year"}
        return
    date(q["year"], 1, 1)      # the year's flows are read from its first day
