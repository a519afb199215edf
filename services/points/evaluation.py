"""Annual evaluation: standings per person and organisation, ranked per community and party branch.

Before the year-end snapshot the standings are computed live from posted
records; the snapshot writes them once (rows the database refuses to change)
and from then on the year is read from it, whatever is corrected later.
Points are the year's postings that still stand (a reversed record no longer
counts); stars follow cumulative verified hours, hours brought from another
street included.
"""
import csv
import io

from services.points import accounts, rules, store
from services.points.schemas import EvaluationQuerySchema, EvaluationSchema, EvaluationSnapshotSchema
from shared.errors import Conflict, Forbidden, ValidationFailed, load
from shared.nodes import known_in
from shared import clock

_evaluation = EvaluationSchema()
CSV_COLUMNS = [("community_rank", "社区排名"), ("community_code", "社区代码"), ("name", "姓名"),
               ("member_category", "身份"), ("party_org_name", "党支部"), ("branch_rank", "支部排名"),
               ("points", "年度积分"), ("hours", "年度服务时长"), ("cumulative_hours", "累计服务时长"),
               ("stars", "星级")]


def standings(tx, year, under):
    rows = [{**r, "stars": rules.stars(r["cumulative_hours"])}
            for r in tx.all(store.STANDINGS, {"year": year, "under": under})]
    by_community, by_branch = {}, {}
    for r in rows:
        by_community.setdefault(r["community_code"], []).append(r)
        if r["party_org_id"] is not None:
            by_branch.setdefault(r["party_org_id"], []).append(r)
    ranked = {}
    for group in by_community.values():
        for r, rank in rules.competition_ranks(group, key=lambda x: (x["points"], x["hours"])):
            ranked[r["account_id"]] = {**r, "community_rank": rank, "branch_rank": None}
    for group in by_branch.values():
        for r, rank in rules.competition_ranks(group, key=lambda x: (x["points"], x["hours"])):
            ranked[r["account_id"]]["branch_rank"] = rank
    return sorted(ranked.values(), key=lambda r: (r["community_code"], r["community_rank"], r["account_id"]))


def report(tx, query, caller, nodes=None):
    accounts.not_for_leaders(caller, "read the evaluation")
    q = load(EvaluationQuerySchema, query)
    under = accounts.under(q, caller)
    if nodes is not None:
        known_in(nodes, q, "under")
    taken = tx.one(store.EVALUATION, (q["year"],))
    rows = tx.all(store.EVALUATION_ROWS, (q["year"], under)) if taken else standings(tx, q["year"], under)
    view = _evaluation.dump({"year": q["year"], "snapshot": taken is not None,
                             "taken_at": taken and taken["taken_at"], "taken_by": taken and taken["taken_by"],
                             "rows": rows})
    if q["format"] == "csv":
        return {"filename": f"points-evaluation-{q['year']}-{under}.csv", "csv": to_csv(view["rows"])}
    return view


MEMBER_LABELS = {"party_member": "党员", "volunteer": "志愿者", "resident": "居民", "organization": "社会组织"}


def to_csv(rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label for _, label in CSV_COLUMNS])
    for r in rows:
        r = {**r, "member_category": MEMBER_LABELS.get(r.get("member_category"), r.get("member_category"))}
        writer.writerow(["" if r.get(k) is None else r[k] for k, _ in CSV_COLUMNS])
    # A BOM, so Excel on a Chinese Windows opens the file as UTF-8.
    return "\ufeff" + out.getvalue()


def snapshot(tx, data, caller, instance_code, today=None):
    d = load(EvaluationSnapshotSchema, data)
    if caller["scope"] != instance_code:
        raise Forbidden("the year-end snapshot covers the whole street",
                        {"scope": [f"needs a token for {instance_code}, not {caller['scope']}"]})
    year = d["year"]
    today = today or clock.today()
    if year >= today.year:
        raise ValidationFailed("the year is not over", {"year": [f"{year} ends on {year}-12-31; snapshot it after"]})
    rows = standings(tx, year, instance_code)
    if tx.execute(store.ADD_EVALUATION, (year, caller["actor"], len(rows))).rowcount == 0:
        taken = tx.one(store.EVALUATION, (year,))
        raise Conflict(f"the {year} evaluation was taken already",
                       {"year": [f"taken on {taken['taken_at']:%Y-%m-%d} by {taken['taken_by']}; it is immutable"]})
    store.copy_rows(tx, store.EVALUATION_ROWS_COPY, [
        (year, r["account_id"], r["community_code"], r["party_org_id"], r["party_org_name"], r["name"],
         r["member_category"], r["points"], r["hours"], r["cumulative_hours"], r["stars"], r["community_rank"],
         r["branch_rank"]) for r in rows])
    tx.emit("points_evaluation_taken", {"year": year, "people": len(rows)})
    return report(tx, {"year": year, "under": instance_code}, {**caller, "scope": instance_code})
