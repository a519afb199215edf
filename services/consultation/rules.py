"""Rules of "three up, three down" (三上三下): pure, no I/O.

A matter moves through the three rounds:
  一上一下 raised (or escalated to the street) → screened: answered directly, taken into
           deliberation, referred elsewhere, rejected with a reason, escalated, or merged into
           the open matter it repeats;
  二上二下 deliberating → decided in a consultation meeting (or, when deliberation adopts nothing,
           rejected or referred with the reason);
  三上三下 decided → implementing → published (公示) → settled (办结) once rated or closed.
A simple matter answered directly, or one referred elsewhere, is settled from there.

Tally rules, stated once: a meeting has a quorum of attendees; without it nothing it votes counts.
An option is adopted when more than half of the attendees approve it; if several do, the one
with most approvals (then fewest oppositions) wins. Priority is the mean of the 1–5 scores given.
"""
import statistics
from datetime import timedelta

from shared.states import article, refusal

CATEGORIES = {"parking": "停车管理", "greening": "绿化养护", "garbage_sorting": "垃圾分类", "noise": "噪音扰民",
              "corridor_clutter": "楼道堆物", "facilities_renewal": "设施更新", "elevator": "加装电梯",
              "property_management": "物业服务", "public_security": "治安防范", "other": "其他"}
CHANNELS = {"reception_day": "居民接待日", "suggestion_box": "意见箱", "discussion_book": "议事簿", "online": "网上",
            "hotline": "热线", "grid_patrol": "网格巡查"}
URGENCIES = ("normal", "urgent", "emergency")
ROLES = {"resident_rep": "居民代表", "party_member": "党员", "building_captain": "楼组长",
         "community_police": "社区民警", "property_company": "物业公司", "owners_committee": "业委会",
         "social_org": "社会组织", "expert": "专家", "street_department": "街道部门"}

SCREENING = {"answer": "answered", "deliberate": "deliberating", "refer": "referred", "reject": "rejected",
             "escalate": "escalated", "merge": "merged"}
def escalate_to(level_code):
    """Who handles a matter escalated from this level: a community's goes to its street, a street's to
    its district (another instance); None above that."""
    return {12: level_code[:9], 9: level_code[:6]}.get(len(level_code))


UNSCREENED = ("raised", "escalated")  # waiting for the community's, or the street's, answer
OPEN = ("raised", "escalated", "answered", "deliberating", "referred", "decided", "implementing", "published")
CLOSED = ("settled", "rejected", "merged")
MATTER_MOVES = {
    "raised": {"answered", "deliberating", "referred", "rejected", "escalated", "merged"},
    "escalated": {"answered", "deliberating", "referred", "rejected"},   # screened again by the street
    # Deliberation that ends without a decision (no option adopted, the item dropped) closes the matter.
    "deliberating": {"decided", "rejected", "referred"},
    "decided": {"implementing"},
    "implementing": {"published"},
    "published": {"settled"},
    "answered": {"settled"},
    "referred": {"settled"},
    "rejected": set(), "merged": set(), "settled": set(),
}
MEETING_MOVES = {"scheduled": {"open", "cancelled", "scheduled"}, "open": {"closed"}, "closed": set(),
                 "cancelled": set()}
SATISFIED = 4  # a score of 4 or 5 counts as satisfied


def matter_move(status, to):
    """None if a matter may move from `status` to `to`, else why not."""
    why = refusal(MATTER_MOVES, "matter", status, to)
    if why and to == "settled" and status in ("deliberating", "decided", "implementing"):
        why = f"{article(status)} matter cannot be settled before its decision is carried out and published"
    return why


def meeting_move(status, to):
    return refusal(MEETING_MOVES, "meeting", status, to)


def due_dates(raised_at, screening_hours, settle_days):
    return raised_at + timedelta(hours=screening_hours), raised_at + timedelta(days=settle_days)


def deadline_for(rows, category, urgency):
    """The deadline row for a category and urgency: the category's own, else the default ('*')."""
    by_key = {(r["category"], r["urgency"]): r for r in rows}
    return by_key.get((category, urgency)) or by_key[("*", urgency)]


def quorum_met(attended, quorum):
    return attended >= quorum


def priority(scores):
    """Mean score, or None when nobody scored."""
    return round(statistics.fmean(scores), 2) if scores else None


def option_tally(attended, quorum, counts):
    """Which option is adopted, given {option_id: {"approve", "oppose", "abstain"}} from attendees.

    Returns (option_id or None, why): None with a reason when the quorum is missing or no option
    has the approval of more than half of the attendees.
    """
    if not quorum_met(attended, quorum):
        return None, f"{attended} attended, the quorum is {quorum}"
    passing = [(c["approve"], -c["oppose"], oid) for oid, c in counts.items() if c["approve"] * 2 > attended]
    if not passing:
        return None, f"no option was approved by more than half of the {attended} attendees"
    return max(passing)[2], None


def figures(matters, ratings, now):
    """Settlement, on-time and satisfaction rates, median days to settle and repeats, for a set of matters.

    matters: dicts with status, raised_at, settle_due_at, settled_at, screened_at, screening_due_at.
    ratings: the scores given. Merged matters are repeats, counted as such and not as matters of their
    own; so are matters raised anyway although a similar one was open (`similar_to`).
    """
    own = [m for m in matters if m["status"] != "merged"]
    settled = [m for m in own if m["status"] == "settled"]
    screened = [m for m in own if m["screened_at"] is not None]
    overdue_open = [m for m in own if m["status"] not in CLOSED and m["settle_due_at"] < now]
    unscreened_late = [m for m in own if m["status"] in UNSCREENED and m["screening_due_at"] < now]
    # Days to settle to 2 places, as each matter_settled fact carries them, so the levels above get
    # the same median from the facts' distribution (aggregator rules.median_from).
    days = sorted(round((m["settled_at"] - m["raised_at"]).total_seconds() / 86400, 2) for m in settled)

    def rate(part, whole):
        return round(part / whole, 4) if whole else None

    return {
        "matters": len(own),
        "settled": len(settled),
        "settlement_rate": rate(len(settled), len(own)),
        "on_time_rate": rate(sum(1 for m in settled if m["settled_at"] <= m["settle_due_at"]), len(settled)),
        "screened_on_time_rate": rate(sum(1 for m in screened if m["screened_at"] <= m["screening_due_at"]),
                                      len(screened)),
        "satisfaction_rate": rate(sum(1 for s in ratings if s >= SATISFIED), len(ratings)),
        "median_days_to_settle": round(statistics.median(days), 2) if days else None,
        "repeat_matters": sum(1 for m in matters if m["status"] == "merged" or m.get("similar_to") is not None),
        "overdue": len(overdue_open),
        "screening_overdue": len(unscreened_late),
    }
