"""Posting verified service records: ledger transfers per second through the batch path.

Why: at the end of a month a community verifies its volunteers' records in bulk
(issue 4 asks for >= 5,000 postings/s through the batch path). Each posting here
is the whole of `records.verify_batch`: lock the records, check state, expiry,
frozen accounts and who may verify, find the rule in force on each service day,
apply daily and yearly caps against what is already posted, insert the
transfers idempotently by transfer id, lock the accounts in order and check no
balance goes negative, write two entries each with a running balance, update
the balances and the records, and write one `points_posted` event per record and
one signed fact batch, in one transaction per batch.

The yardstick, in the same run on the same machine, is a raw pipelined
`INSERT` of the same transfer rows into an unindexed table with the same
columns: what the database does with no idempotency, no balance, no entries.
Everything runs in a throwaway database (`linli_bench_points`).
"""
import shared.green  # noqa: F401,I001  (first: monkey-patches eventlet before psycopg is imported)

import argparse
import random
import time
from datetime import timedelta

from common import Results, config, log, server_version, throwaway_database
from shared import envelope
from shared.db import connect, transaction
from shared.facts import Signer

COMMUNITIES = ["310110012001", "310110012002", "310110012003", "310110012004", "310110012005"]
RAW_TABLE = ("CREATE TABLE raw_transfers (transfer_id text, kind text, debit_account bigint, credit_account bigint, "
             "amount bigint, service_record_id bigint, actor text, created_at timestamptz DEFAULT now())")
RAW_INSERT = ("INSERT INTO raw_transfers (transfer_id, kind, debit_account, credit_account, amount, "
              "service_record_id, actor) VALUES (%s, %s, %s, %s, %s, %s, %s)")


def prepare(dsn, cfg, people, records):
    """Catalogue, accounts and pending records, loaded directly (this part is not measured)."""
    from services.points import catalogue
    from shared import clock
    admin = {"actor": "bench", "scope": cfg["NODE_CODE"], "role": "street_admin", "organization_id": None}
    start = clock.today() - timedelta(days=60)
    source = envelope.source_from_config("points", cfg)
    with transaction(dsn, "points", source, Signer.from_config(cfg)) as tx:
        for code, name, unit, per in (("security_patrol", "平安巡逻", "hour", 10),
                                      ("elderly_visit", "探访独居老人", "occasion", 5),
                                      ("garbage_sorting", "垃圾分类指导", "hour", 8)):
            catalogue.create_category(tx, {"code": code, "name": name, "unit": unit, "points_per_unit": per,
                                           "daily_cap": 60, "yearly_cap": 2000,
                                           "verifier_roles": ["community_worker"],
                                           "valid_from": start.isoformat()}, admin, today=start)
    rng = random.Random(4)
    now = clock.now()
    with connect(dsn) as conn:
        with conn.cursor().copy("COPY points.accounts (kind, resident_id, community_code, name, member_category) "
                                "FROM STDIN") as copy:
            for i in range(people):
                copy.write_row(("person", 10_000 + i, COMMUNITIES[i % 5], f"志愿者{i}",
                                "party_member" if i % 3 == 0 else "volunteer"))
        ids = [r["id"] for r in conn.execute("SELECT id FROM points.accounts ORDER BY id").fetchall()]
        with conn.cursor().copy("COPY points.service_records (account_id, community_code, category_code, served_at, "
                                "served_on, hours, description, source, recorded_by, expires_at) FROM STDIN") as copy:
            for i in range(records):
                account = ids[i % people]
                served = now - timedelta(days=1 + (i // people) % 50, hours=rng.randint(0, 6))
                copy.write_row((account, COMMUNITIES[(account - ids[0]) % 5],
                                ("security_patrol", "elderly_visit", "garbage_sorting")[i % 3], served,
                                clock.local_date(served), rng.choice(("1.5", "2", "2.5", "3")),
                                "楼道巡逻与独居老人探访", "logged", "bench", now + timedelta(days=30)))
        conn.commit()
        return [r["id"] for r in conn.execute("SELECT id FROM points.service_records ORDER BY id").fetchall()]


def post_all(dsn, cfg, record_ids, batch):
    from services.points import records
    worker = {"actor": "token:bench:张晓燕", "scope": cfg["NODE_CODE"], "role": "street_admin", "organization_id": None}
    source = envelope.source_from_config("points", cfg)
    signer = Signer.from_config(cfg)
    posted = 0
    start = time.perf_counter()
    for i in range(0, len(record_ids), batch):
        with transaction(dsn, "points", source, signer) as tx:
            posted += records.verify_batch(tx, {"record_ids": record_ids[i:i + batch]}, worker)["posted"]
    return time.perf_counter() - start, posted


def raw_insert(dsn, n, batch):
    with connect(dsn) as conn:
        conn.execute(RAW_TABLE)
        conn.commit()
        start = time.perf_counter()
        for i in range(0, n, batch):
            with conn.cursor() as cur:
                cur.executemany(RAW_INSERT, [(f"posting:{j}", "posting", 1, 2 + j % 1000, 20, j, "bench")
                                             for j in range(i, min(n, i + batch))])
            conn.commit()
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=5_000,
                        help="records per verify_batch call (one transaction; the API takes up to 5,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs (a fresh database each); the median is kept")
    args = parser.parse_args()
    from shared.migrations import migrate

    cfg = config()
    timings, raw_timings = [], []
    for run in range(args.runs):
        with throwaway_database(cfg["DATABASE_URL"], "linli_bench_points") as dsn:
            migrate(dsn, ["points"])
            record_ids = prepare(dsn, cfg, args.people, args.records)
            elapsed, posted = post_all(dsn, cfg, record_ids, args.batch)
            with connect(dsn) as conn:
                tb = conn.execute("SELECT (SELECT count(*) FROM points.transfers) AS transfers, "
                                  "(SELECT count(*) FROM points.entries) AS entries, "
                                  "(SELECT sum(balance) FROM points.accounts) AS balance_sum, "
                                  "(SELECT count(*) FROM points.outbox WHERE routing_key = 'points_posted') AS events"
                                  ).fetchone()
            assert posted == args.records and tb["entries"] == 2 * tb["transfers"] and tb["balance_sum"] == 0, tb
            assert tb["events"] == args.records, tb
            raw = raw_insert(dsn, args.records, args.batch)
            timings.append(elapsed)
            raw_timings.append(raw)
            log(f"run {run + 1}: {posted:,} postings ({tb['transfers']:,} transfers) in {elapsed:.2f} s "
                f"({posted / elapsed:,.0f}/s); raw INSERT {raw:.2f} s ({args.records / raw:,.0f} rows/s)")
    elapsed = sorted(timings)[len(timings) // 2]
    raw = sorted(raw_timings)[len(raw_timings) // 2]
    results = Results({"records": args.records, "people": args.people, "batch": args.batch, "runs": args.runs})
    results.add("points_postings", round(args.records / elapsed), "postings/s", ratio=raw / elapsed,
                seconds=round(elapsed, 3), raw_insert_rows_per_s=round(args.records / raw),
                all_runs_s=[round(t, 3) for t in timings], goal="postings/s >= 5000 (batch path)")
    results.finish({"postgresql": server_version(cfg["DATABASE_URL"])})


if __name__ == "__main__":
    main()
