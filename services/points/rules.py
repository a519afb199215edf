"""The rules of service points: pure, no I/O, so they are tested in microseconds.

Points are whole numbers. An hourly rule awards floor(hours × points per hour);
an occasion rule awards its points once per record. Caps are in points, per
person and category, per calendar day and per calendar year of the service
date, and are applied when a record is posted: a record that would pass a cap
is posted with what is left (possibly 0, the hours still count for star
levels) and keeps the uncapped figure beside it.
"""
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from shared.errors import Conflict
from shared.states import refusal
from shared import clock


VERIFIER_ROLES = ("community_worker", "organization_leader")
# A street administrator may do what a community worker may.
ACTS_AS = {"community_worker": "community_worker", "street_admin": "community_worker",
           "organization_leader": "organization_leader"}

# Cumulative verified service hours per star (national volunteer-service standard, 志愿服务星级).
STAR_HOURS = (Decimal(100), Decimal(300), Decimal(600), Decimal(1000), Decimal(1500))

RECORD_MOVES = {"pending": {"posted", "voided", "expired"}, "posted": {"reversed"},
                "voided": set(), "expired": set(), "reversed": set()}
REDEMPTION_MOVES = {"pending": {"fulfilled", "cancelled"}, "fulfilled": set(), "cancelled": set()}

# Person and organisation accounts (and the ledger's holding accounts) may never go below zero.
MAY_GO_NEGATIVE = {"issuance", "immigrated"}


class InsufficientPoints(Conflict):
    """A debit that would take an account below zero (409, the field is the amount)."""


@dataclass(frozen=True)
class Rule:
    category_code: str
    version: int
    unit: str
    points_per_unit: int
    daily_cap: int | None = None
    yearly_cap: int | None = None
    verifier_roles: tuple = ("community_worker",)

    @classmethod
    def from_row(cls, row):
        return cls(row["category_code"], row["version"], row["unit"], row["points_per_unit"], row["daily_cap"],
                   row["yearly_cap"], tuple(row["verifier_roles"]))


def check_rule(d):
    """Cross-field checks of a new rule version; returns {field: [message]}."""
    errors = {}
    daily, yearly = d.get("daily_cap"), d.get("yearly_cap")
    if daily is not None and yearly is not None and daily > yearly:
        errors["daily_cap"] = [f"must not exceed the yearly cap ({yearly})"]
    if d.get("unit") == "occasion" and daily is not None and daily < d["points_per_unit"]:
        errors["daily_cap"] = [f"is below one occasion's points ({d['points_per_unit']}): nothing could be posted"]
    bad = set(d.get("verifier_roles", ())) - set(VERIFIER_ROLES)
    if bad:
        errors["verifier_roles"] = [f"unknown roles {sorted(bad)}; choose from {', '.join(VERIFIER_ROLES)}"]
    return errors


def service_day(served_at):
    """The instance's calendar day of a service, whatever zone the timestamp came in."""
    if served_at.tzinfo is None:
        served_at = served_at.replace(tzinfo=clock.zone())
    return clock.local_date(served_at)


def points_for(rule, hours):
    if rule.unit == "occasion":
        return rule.points_per_unit
    return int((Decimal(hours) * rule.points_per_unit).to_integral_value(rounding=ROUND_FLOOR))


def apply_caps(points, rule, posted_that_day, posted_that_year):
    """(points awarded, the uncapped figure if a cap cut it, else None)."""
    room = points
    if rule.daily_cap is not None:
        room = min(room, max(rule.daily_cap - posted_that_day, 0))
    if rule.yearly_cap is not None:
        room = min(room, max(rule.yearly_cap - posted_that_year, 0))
    return room, (points if room < points else None)


def award_batch(records, rules, day_totals, year_totals):
    """Points for records posted together, in order, each seeing the ones before it under the caps.

    records: dicts with account_id, category_code, served_on, hours and rule_version.
    rules: {(category_code, version): Rule}. day_totals / year_totals: points already posted,
    keyed (account_id, category_code, day) and (account_id, category_code, year); updated in place.
    Returns [(points, capped_from)] in the records' order.
    """
    out = []
    for r in records:
        rule = rules[(r["category_code"], r["rule_version"])]
        day_key = (r["account_id"], r["category_code"], r["served_on"])
        year_key = (r["account_id"], r["category_code"], r["served_on"].year)
        awarded, capped = apply_caps(points_for(rule, r["hours"]), rule, day_totals.get(day_key, 0),
                                     year_totals.get(year_key, 0))
        day_totals[day_key] = day_totals.get(day_key, 0) + awarded
        year_totals[year_key] = year_totals.get(year_key, 0) + awarded
        out.append((awarded, capped))
    return out


def stars(hours):
    """Star level 0–5 for cumulative verified service hours."""
    return sum(1 for threshold in STAR_HOURS if Decimal(hours) >= threshold)


def next_star(hours):
    """Hours still needed for the next star, or None at five stars."""
    for threshold in STAR_HOURS:
        if Decimal(hours) < threshold:
            return threshold - Decimal(hours)
    return None


def record_move(status, to):
    """None if a service record may move from `status` to `to`, else why not."""
    return refusal(RECORD_MOVES, "record", status, to)


def redemption_move(status, to):
    return refusal(REDEMPTION_MOVES, "redemption", status, to)


def may_verify(rule, caller_role, caller_organization, record_organization):
    """None if the caller may verify a record under this rule, else why not."""
    acts_as = ACTS_AS.get(caller_role)
    if acts_as not in rule.verifier_roles:
        return f"category {rule.category_code} is verified by {' or '.join(rule.verifier_roles)}, not by {caller_role}"
    if acts_as == "organization_leader":
        if record_organization is None:
            return "an organisation's leader verifies only records of that organisation's activities"
        if caller_organization != record_organization:
            return f"this token's holder leads organisation {caller_organization}, not {record_organization}"
    return None


def entries_for(transfers, accounts):
    """Entries and new balances for transfers applied in order: the ledger's arithmetic.

    transfers: dicts with pk, debit_account, credit_account, amount (and transfer_id for errors).
    accounts: {id: {"kind", "balance", "status"}} for every account involved, current balances.
    Returns ([(account_id, transfer_pk, signed amount, balance after)], {account_id: new balance}).
    Raises InsufficientPoints when a debit would take a non-negative account below zero.
    """
    balances = {aid: a["balance"] for aid, a in accounts.items()}
    entries = []
    for t in transfers:
        debit, credit, amount = t["debit_account"], t["credit_account"], t["amount"]
        after = balances[debit] - amount
        if after < 0 and accounts[debit]["kind"] not in MAY_GO_NEGATIVE:
            raise InsufficientPoints(
                f"account {debit} holds {balances[debit]} points, {amount} are needed",
                {"amount": [f"only {balances[debit]} points are available"]})
        balances[debit] = after
        balances[credit] += amount
        entries.append((debit, t["pk"], -amount, after))
        entries.append((credit, t["pk"], amount, balances[credit]))
    return entries, balances


def competition_ranks(rows, key):
    """1, 2, 2, 4 … ranks by `key` descending (equal scores share a rank, the next one skips)."""
    ranks, previous, rank = [], object(), 0
    for i, row in enumerate(sorted(rows, key=key, reverse=True), start=1):
        score = key(row)
        if score != previous:
            rank, previous = i, score
        ranks.append((row, rank))
    return ranks


