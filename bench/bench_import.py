"""Resident import throughput: generated residents in a CSV -> validated, sealed, stored rows per second.

Why: streets start by importing the registers they keep in spreadsheets, often
tens of thousands of residents at once (issue 3 asks for >= 20,000 rows/s, i.e.
100,000 rows in under 5 s). The yardstick, measured in the same run on the same
machine, is PostgreSQL's raw `COPY` of the same rows, as text, into an
unindexed table with the same columns: what the database does with no
validation, no encryption, no indexes, no events.

The import is the whole path `linli import residents` takes
(`services.registry.importer.import_residents`): decode and map the CSV,
validate every ID number, phone, date, label and community, check for people
already registered, seal ID numbers and phones (AES-GCM) and hash them, create
buildings, units, rooms and households, COPY residents and their history, and
write `residents_imported` events (500 residents each) and signed fact batches
(500 facts each) to the outbox, all in one transaction that is committed before the clock stops.

Rows come from `linli.demo.people.generate` (valid GB 11643 numbers, realistic
names, households of 1-5 in rooms of the demo communities). Everything runs in a
throwaway database (`linli_bench_import`) that is dropped afterwards.
"""
import shared.green  # noqa: F401,I001  (first: monkey-patches eventlet before psycopg is imported)

import argparse
import time

from common import Results, config, log, server_version, throwaway_database
from linli.demo import people
from shared import envelope
from shared.db import connect, transaction
from shared.facts import Signer

COMMUNITIES = [
    {"code": "310110012001", "name": "长海一村居委会", "estate": "长海一村", "grids": ["310110012001001", "310110012001002"]},
    {"code": "310110012002", "name": "长海二村居委会", "estate": "长海二村", "grids": []},
    {"code": "310110012003", "name": "民星一村居委会", "estate": "民星一村", "grids": ["310110012003001"]},
    {"code": "310110012004", "name": "国和一村居委会", "estate": "国和一村", "grids": []},
    {"code": "310110012005", "name": "翔殷路居委会", "estate": "翔殷路", "grids": []},
]
RAW_TABLE = ("CREATE TABLE raw_rows (name text, id_number text, sex text, birth_date text, phone text, "
             "community_code text, grid_code text, building text, unit text, room text, household_no text, "
             "relation text, residence_type text, tags text, moved_in text)")


def raw_copy(dsn, rows):
    with connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_rows")
        conn.execute(RAW_TABLE)
        conn.commit()
        start = time.perf_counter()
        with conn.cursor().copy("COPY raw_rows FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="import runs (a fresh database each); the median is kept")
    args = parser.parse_args()

    from linli.demo import load_hierarchy
    from services.registry import importer
    from shared.protect import Vault
    from shared.migrations import migrate

    cfg = config()
    log(f"generating {args.rows:,} residents")
    generated = list(people.generate(args.rows, COMMUNITIES))
    csv_rows = [people.to_csv_row(p) for p in generated]
    path = "/tmp/linli-bench-residents.csv"
    people.write_csv(path, generated)
    data = open(path, "rb").read()
    log(f"CSV is {len(data) / 1e6:.1f} MB")

    timings, raw_timings, phases = [], [], []
    caller = {"actor": "bench", "scope": cfg["NODE_CODE"]}
    for run in range(args.runs):
        with throwaway_database(cfg["DATABASE_URL"], "linli_bench_import") as dsn:
            migrate(dsn)
            source = envelope.source_from_config("registry", cfg)
            with transaction(dsn, "registry", source, Signer.from_config(cfg)) as tx:
                load_hierarchy(tx, cfg["NODE_CODE"])
            vault = Vault.from_config(cfg)
            start = time.perf_counter()
            with transaction(dsn, "registry", source, Signer.from_config(cfg)) as tx:
                report = importer.import_residents(tx, vault, data, "all_or_nothing", caller)
            elapsed = time.perf_counter() - start
            assert report["written"] == args.rows, {k: v for k, v in report.items() if k != "errors"} | {
                "errors": report["errors"][:5]}
            with connect(dsn) as conn:
                stored = conn.execute("SELECT count(*) AS n FROM registry.residents").fetchone()["n"]
                events = conn.execute("SELECT coalesce(sum(json_array_length(body->'payload'->'residents')), 0) AS n "
                                      "FROM registry.outbox WHERE routing_key = 'residents_imported'").fetchone()["n"]
            assert stored == args.rows and events == args.rows, (stored, events)
            raw = raw_copy(dsn, csv_rows)
            timings.append(elapsed)
            phases.append(report["seconds"])
            raw_timings.append(raw)
            log(f"run {run + 1}: import {elapsed:.2f} s ({args.rows / elapsed:,.0f} rows/s), "
                f"raw COPY {raw:.2f} s ({args.rows / raw:,.0f} rows/s); phases {report['seconds']}")
    elapsed = sorted(timings)[len(timings) // 2]
    raw = sorted(raw_timings)[len(raw_timings) // 2]
    results = Results({"rows": args.rows, "runs": args.runs, "csv_bytes": len(data)})
    results.add("import_residents", round(args.rows / elapsed), "rows/s", ratio=raw / elapsed,
                seconds=round(elapsed, 3), raw_copy_rows_per_s=round(args.rows / raw),
                all_runs_s=[round(t, 3) for t in timings], phases_s=phases, goal="rows/s >= 20000")
    results.finish({"postgresql": server_version(cfg["DATABASE_URL"])})


if __name__ == "__main__":
    main()
