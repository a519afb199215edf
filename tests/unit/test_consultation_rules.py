"""What the tests prove: the 三上三下 rules in services.consultation.rules hold, with no I/O.

Every (from, to) pair of the matter and meeting state machines is legal exactly when the table
says so, with the reason given; the tally needs a quorum and more than half of the attendees;
deadlines are plain wall-clock arithmetic on aware datetimes; the figures match a hand-computed set.
"""
from datetime import datetime, timedelta
from itertools import pairwise, product
from zoneinfo import ZoneInfo

import pytest

from services.consultation import rules

SH = ZoneInfo("Asia/Shanghai")


def at(month, day, hour=9, minute=0, year=2025):
    return datetime(year, month, day, hour, minute, tzinfo=SH)


# -- the matter's state machine ----------------------------------------------------------------

MATTER_STATUSES = sorted(rules.MATTER_MOVES)
BEFORE_DECISION_CARRIED_OUT = ("deliberating", "decided", "implementing")

# The legal moves, written out from the module docstring (not read from the table under test).
LEGAL_MATTER_MOVES = {
    # 一上一下: screening of a raised matter, or of one escalated to the street
    ("raised", "answered"), ("raised", "deliberating"), ("raised", "referred"), ("raised", "rejected"),
    ("raised", "escalated"), ("raised", "merged"),
    ("escalated", "answered"), ("escalated", "deliberating"), ("escalated", "referred"), ("escalated", "rejected"),
    # 二上二下
    ("deliberating", "decided"), ("deliberating", "rejected"), ("deliberating", "referred"),
    # 三上三下
    ("decided", "implementing"), ("implementing", "published"), ("published", "settled"),
    # simple matters settle from where they are
    ("answered", "settled"), ("referred", "settled"),
}


def test_matter_statuses_are_the_open_and_closed_ones():
    assert set(rules.MATTER_MOVES) == set(rules.OPEN) | set(rules.CLOSED)
    assert not set(rules.OPEN) & set(rules.CLOSED)
    for targets in rules.MATTER_MOVES.values():
        assert targets <= set(rules.MATTER_MOVES)


def test_matter_table_is_the_documented_one():
    table = {(s, t) for s, targets in rules.MATTER_MOVES.items() for t in targets}
    assert table == LEGAL_MATTER_MOVES


def test_closed_matters_are_final_and_every_screening_outcome_is_reachable():
    for status in rules.CLOSED:
        assert rules.MATTER_MOVES[status] == set()
    assert set(rules.SCREENING.values()) == rules.MATTER_MOVES["raised"]


@pytest.mark.parametrize("status, to", list(product(MATTER_STATUSES, MATTER_STATUSES)),
                         ids=[f"{s}->{t}" for s, t in product(MATTER_STATUSES, MATTER_STATUSES)])
def test_every_matter_move(status, to):
    why = rules.matter_move(status, to)
    legal = to in rules.MATTER_MOVES[status]
    assert (why is None) == legal
    if legal:
        return
    if status == to:
        assert why == f"the matter is already {status}"
    elif to == "settled" and status in BEFORE_DECISION_CARRIED_OUT:
        assert "cannot be settled before its decision" in why
        assert "cannot become" not in why
    else:
        assert why == f"{'an' if status[0] in 'aeiou' else 'a'} {status} matter cannot become {to}"


@pytest.mark.parametrize("status, to, says", [
    ("settled", "settled", "the matter is already settled"),
    ("raised", "raised", "the matter is already raised"),
    ("escalated", "escalated", "the matter is already escalated"),
    ("deliberating", "deliberating", "the matter is already deliberating"),
    ("raised", "settled", "a raised matter cannot become settled"),
    ("escalated", "merged", "an escalated matter cannot become merged"),
    ("rejected", "deliberating", "a rejected matter cannot become deliberating"),
    ("published", "implementing", "a published matter cannot become implementing"),
    ("deliberating", "settled",
     "a deliberating matter cannot be settled before its decision is carried out and published"),
    ("decided", "settled", "a decided matter cannot be settled before its decision is carried out and published"),
    ("implementing", "settled",
     "an implementing matter cannot be settled before its decision is carried out and published"),
])
def test_matter_move_reasons(status, to, says):
    assert rules.matter_move(status, to) == says


def test_unknown_matter_status_cannot_move():
    assert rules.matter_move("archived", "settled") == "an archived matter cannot become settled"
    assert rules.matter_move("raised", "archived") == "a raised matter cannot become archived"


def test_the_three_rounds_in_order():
    path = ["raised", "deliberating", "decided", "implementing", "published", "settled"]
    for status, to in pairwise(path):
        assert rules.matter_move(status, to) is None


# -- the meeting's state machine ---------------------------------------------------------------

MEETING_STATUSES = sorted(rules.MEETING_MOVES)
LEGAL_MEETING_MOVES = {("scheduled", "open"), ("scheduled", "cancelled"), ("scheduled", "scheduled"),
                       ("open", "closed")}


def test_meeting_table_is_the_expected_one():
    table = {(s, t) for s, targets in rules.MEETING_MOVES.items() for t in targets}
    assert table == LEGAL_MEETING_MOVES


@pytest.mark.parametrize("status, to", list(product(MEETING_STATUSES, MEETING_STATUSES)),
                         ids=[f"{s}->{t}" for s, t in product(MEETING_STATUSES, MEETING_STATUSES)])
def test_every_meeting_move(status, to):
    why = rules.meeting_move(status, to)
    legal = to in rules.MEETING_MOVES[status]
    assert (why is None) == legal
    if legal:
        return
    if status == to:
        assert why == f"the meeting is already {status}"
    else:
        assert why == f"{'an' if status[0] in 'aeiou' else 'a'} {status} meeting cannot become {to}"


@pytest.mark.parametrize("status, to, says", [
    ("scheduled", "scheduled", None),  # rescheduling (改期) a meeting keeps it scheduled
    ("open", "open", "the meeting is already open"),
    ("closed", "closed", "the meeting is already closed"),
    ("cancelled", "cancelled", "the meeting is already cancelled"),
    ("scheduled", "closed", "a scheduled meeting cannot become closed"),
    ("open", "cancelled", "an open meeting cannot become cancelled"),
    ("closed", "open", "a closed meeting cannot become open"),
    ("cancelled", "scheduled", "a cancelled meeting cannot become scheduled"),
])
def test_meeting_move_reasons(status, to, says):
    assert rules.meeting_move(status, to) == says


# -- quorum, tally and priority ----------------------------------------------------------------

# The options of a fictional meeting on parking in 枫林苑小区 (ids as stored).
OPTIONS = {11: "在3号楼东侧划线增设12个车位", 12: "夜间开放幼儿园门前道路错时停车", 13: "维持现状，由物业加强巡查"}


def votes(approve, oppose=0, abstain=0):
    return {"approve": approve, "oppose": oppose, "abstain": abstain}


@pytest.mark.parametrize("attended, quorum, met", [(4, 5, False), (5, 5, True), (6, 5, True), (0, 0, True)])
def test_quorum_met(attended, quorum, met):
    assert rules.quorum_met(attended, quorum) is met


def test_below_quorum_adopts_nothing_even_unanimously():
    assert rules.option_tally(4, 5, {11: votes(4)}) == (None, "4 attended, the quorum is 5")


def test_exactly_the_quorum_counts():
    assert rules.option_tally(5, 5, {11: votes(3, 2)}) == (11, None)


def test_exactly_half_approving_is_not_adopted():
    assert rules.option_tally(6, 5, {11: votes(3, 3)}) == (
        None, "no option was approved by more than half of the 6 attendees")


def test_one_more_than_half_is_adopted():
    assert rules.option_tally(6, 5, {11: votes(4, 2)}) == (11, None)


def test_half_is_of_attendees_not_of_votes_cast():
    # 9 attended: 4 approve, 1 opposes, 4 abstain; 4 approvals are not more than half of 9.
    assert rules.option_tally(9, 5, {11: votes(4, 1, 4)}) == (
        None, "no option was approved by more than half of the 9 attendees")
    # odd attendance: 5 of 9 is more than half
    assert rules.option_tally(9, 5, {11: votes(5, 0, 4)}) == (11, None)


def test_no_options_adopts_nothing():
    assert rules.option_tally(7, 5, {}) == (None, "no option was approved by more than half of the 7 attendees")


def test_most_approvals_wins_whatever_the_oppositions():
    counts = {11: votes(6, 3), 12: votes(5, 0), 13: votes(2, 5)}
    assert rules.option_tally(9, 5, counts) == (11, None)


def test_equal_approvals_fewest_oppositions_wins():
    counts = {11: votes(5, 3), 12: votes(5, 1), 13: votes(5, 2)}
    assert rules.option_tally(9, 5, counts) == (12, None)


@pytest.mark.parametrize("order", [(11, 12, 13), (13, 12, 11), (12, 13, 11)])
def test_full_tie_goes_to_the_highest_option_id(order):
    # max() over (approve, -oppose, id): with approvals and oppositions equal, the larger id wins,
    # whatever order the options come in.
    counts = {oid: votes(5, 1) for oid in order}
    assert rules.option_tally(9, 5, counts) == (13, None)


def test_a_failing_option_never_wins_the_tie_break():
    # 13 has the highest id and no oppositions but only 4 of 9 approvals.
    counts = {11: votes(5, 2), 12: votes(5, 2), 13: votes(4, 0)}
    assert rules.option_tally(9, 5, counts) == (12, None)


@pytest.mark.parametrize("scores, mean", [
    ([4, 5, 5], 4.67),   # 14 / 3 = 4.666…
    ([1, 2, 2], 1.67),   # 5 / 3 = 1.666…
    ([2, 2, 3], 2.33),   # 7 / 3 = 2.333…
    ([3, 4], 3.5),
    ([5], 5.0),
    ([1, 5, 5, 5, 5, 5], 4.33),   # 26 / 6 = 4.333…
])
def test_priority_is_the_rounded_mean(scores, mean):
    assert rules.priority(scores) == mean


def test_priority_without_scores_is_none():
    assert rules.priority([]) is None
    assert rules.priority(()) is None


# -- deadlines ---------------------------------------------------------------------------------

DEADLINES = [
    {"category": "*", "urgency": "normal", "screening_hours": 72, "settle_days": 30, "note": "一般事项"},
    {"category": "*", "urgency": "urgent", "screening_hours": 24, "settle_days": 7, "note": "紧急事项"},
    {"category": "*", "urgency": "emergency", "screening_hours": 2, "settle_days": 1, "note": "突发险情"},
    {"category": "elevator", "urgency": "normal", "screening_hours": 120, "settle_days": 90, "note": "加装电梯需征询全楼"},
    {"category": "noise", "urgency": "urgent", "screening_hours": 12, "settle_days": 3, "note": "夜间施工噪音"},
]


def test_due_dates_cross_midnight_in_shanghai():
    raised = at(3, 14, 21, 30)                     # 2025-03-14 21:30 +08:00 (13:30 UTC)
    screen_by, settle_by = rules.due_dates(raised, 6, 15)
    assert screen_by == datetime(2025, 3, 15, 3, 30, tzinfo=SH)   # next day in Shanghai …
    assert screen_by.astimezone(ZoneInfo("UTC")).date() == raised.astimezone(ZoneInfo("UTC")).date()  # … same in UTC
    assert settle_by == datetime(2025, 3, 29, 21, 30, tzinfo=SH)
    assert screen_by.utcoffset() == settle_by.utcoffset() == timedelta(hours=8)
    assert screen_by.tzinfo is SH and settle_by.tzinfo is SH


def test_due_dates_cross_the_new_year():
    raised = at(12, 31, 22, 0, year=2024)
    screen_by, settle_by = rules.due_dates(raised, 2, 1)
    assert screen_by == datetime(2025, 1, 1, 0, 0, tzinfo=SH)
    assert settle_by == datetime(2025, 1, 1, 22, 0, tzinfo=SH)
    assert settle_by - raised == timedelta(days=1)


def test_due_dates_accept_fractional_hours():
    screen_by, _ = rules.due_dates(at(6, 30, 23, 15), 1.5, 0)
    assert screen_by == datetime(2025, 7, 1, 0, 45, tzinfo=SH)


def test_deadline_prefers_the_category_row():
    row = rules.deadline_for(DEADLINES, "elevator", "normal")
    assert (row["screening_hours"], row["settle_days"]) == (120, 90)
    row = rules.deadline_for(list(reversed(DEADLINES)), "elevator", "normal")
    assert (row["screening_hours"], row["settle_days"]) == (120, 90)
    assert rules.deadline_for(DEADLINES, "noise", "urgent")["settle_days"] == 3


def test_deadline_falls_back_to_the_default_row():
    assert rules.deadline_for(DEADLINES, "elevator", "urgent") is DEADLINES[1]    # no elevator/urgent row
    assert rules.deadline_for(DEADLINES, "parking", "normal") is DEADLINES[0]
    assert rules.deadline_for(DEADLINES, "noise", "emergency") is DEADLINES[2]


def test_deadline_without_a_default_row_is_an_error():
    with pytest.raises(KeyError):
        rules.deadline_for(DEADLINES[3:], "parking", "normal")


# -- figures -----------------------------------------------------------------------------------

NOW = at(6, 30, 12, 0)


def matter(title, status, raised_at, screened_at, settled_at=None, screening_hours=24, settle_days=15):
    screening_due_at, settle_due_at = rules.due_dates(raised_at, screening_hours, settle_days)
    return {"title": title, "status": status, "raised_at": raised_at, "screened_at": screened_at,
            "screening_due_at": screening_due_at, "settled_at": settled_at, "settle_due_at": settle_due_at}


MATTERS = [
    # 1 settled on time: screened 6 h in (due 06-02 09:00), settled 06-05 09:00 (due 06-16 09:00): 4.0 days
    matter("5号楼楼道堆放旧家具", "settled", at(6, 1, 9), at(6, 1, 15), at(6, 5, 9)),
    # 2 settled late: screened on time, settled 05-21 21:00 (due 05-16 09:00): 20.5 days
    matter("小区东门非机动车乱停", "settled", at(5, 1, 9), at(5, 1, 18), at(5, 21, 21)),
    # 3 screened late: screened 06-12 08:00 (due 06-11 08:00), settled 06-20 20:00 (due 06-25 08:00): 10.5 days
    matter("中心绿地树木遮挡低层采光", "settled", at(6, 10, 8), at(6, 12, 8), at(6, 20, 20)),
    # 4, 5 merged duplicates of 1: screened late and past due, yet counted only as repeats
    matter("5号楼一楼过道堆物", "merged", at(6, 2, 10), at(6, 4, 10)),
    matter("楼道旧沙发有火灾隐患", "merged", at(6, 3, 10), at(6, 5, 10)),
    # 6 rejected with a reason, screened on time; settle due 06-20 has passed but it is closed
    matter("要求拆除邻居合法加装的空调外机", "rejected", at(6, 5, 9), at(6, 5, 11)),
    # 7 open and overdue: implementing, screened on time, settle due 06-04 09:00 < NOW
    matter("垃圾厢房异味扰民", "implementing", at(5, 20, 9), at(5, 20, 16)),
    # 8 open, not overdue: raised yesterday, not yet screened, settle due 07-14 10:00 > NOW
    matter("广场舞音响夜间过响", "raised", at(6, 29, 10), None),
]
RATINGS = [5, 4, 3, 2, 5, 4, 1]


def test_figures_on_a_known_set():
    got = rules.figures(MATTERS, RATINGS, NOW)
    assert got == {
        "matters": 6,                       # 8 minus the 2 merged
        "settled": 3,                       # 1, 2, 3
        "settlement_rate": 0.5,             # 3 / 6
        "on_time_rate": 0.6667,             # 1 and 3 of 3 settled: 2 / 3 = 0.6666…
        "screened_on_time_rate": 0.8,       # screened: 1, 2, 3, 6, 7; late: 3 → 4 / 5 (merged ignored, 8 unscreened)
        "satisfaction_rate": 0.5714,        # ≥ 4: 5, 4, 5, 4 of 7 ratings → 4 / 7 = 0.571428…
        "median_days_to_settle": 10.5,      # median of 4.0, 10.5, 20.5
        "repeat_matters": 2,                # 4, 5
        "overdue": 1,                       # 7 (6 is closed, 8 is not yet due)
        "screening_overdue": 1,             # 8: unscreened, due 06-30 10:00 < NOW
    }


def test_median_of_an_even_number_of_settled_matters_is_the_mean_of_the_middle_two():
    two = [MATTERS[0], MATTERS[1]]          # 4.0 and 20.5 days
    assert rules.figures(two, [], NOW)["median_days_to_settle"] == 12.25


def test_settled_exactly_at_the_deadline_is_on_time_and_due_now_is_not_overdue():
    raised = at(6, 1, 9)
    on_the_dot = matter("健身器材螺丝松动", "settled", raised, raised + timedelta(hours=24),
                        raised + timedelta(days=15))
    due_now = matter("单元门禁失灵", "published", NOW - timedelta(days=15), NOW - timedelta(days=13))
    got = rules.figures([on_the_dot, due_now], [4], NOW)
    assert got["on_time_rate"] == 1.0
    assert got["screened_on_time_rate"] == 0.5     # on_the_dot screened at its due time; due_now after 48 h of 24
    assert got["overdue"] == 0                      # settle_due_at == NOW is not yet overdue
    assert got["satisfaction_rate"] == 1.0
    later = rules.figures([due_now], [], NOW + timedelta(seconds=1))
    assert later["overdue"] == 1


def test_figures_on_nothing():
    assert rules.figures([], [], NOW) == {
        "matters": 0, "settled": 0, "settlement_rate": None, "on_time_rate": None,
        "screened_on_time_rate": None, "satisfaction_rate": None, "median_days_to_settle": None,
        "repeat_matters": 0, "overdue": 0, "screening_overdue": 0,
    }


def test_figures_on_merged_matters_only():
    got = rules.figures(MATTERS[3:5], [], NOW)
    assert got["matters"] == 0 and got["repeat_matters"] == 2
    assert got["settlement_rate"] is None and got["screened_on_time_rate"] is None
    assert got["overdue"] == 0


def test_figures_with_open_matters_only():
    got = rules.figures(MATTERS[6:], [3], NOW)
    assert got["settlement_rate"] == 0.0
    assert got["on_time_rate"] is None and got["median_days_to_settle"] is None
    assert got["satisfaction_rate"] == 0.0          # a 3 is not satisfied
    assert got["overdue"] == 1


def test_a_matter_raised_anyway_beside_a_similar_open_one_is_a_repeat():
    again = {**matter("东门电动车乱停又被提出", "raised", at(6, 29, 11), None), "similar_to": 2}
    assert rules.figures([*MATTERS, again], RATINGS, NOW)["repeat_matters"] == 3
