"""An emergency broadcast to 1,000,000 subscribers: deliveries per second, fan-out and sending.

Why: a district must be able to reach every household of its area fast in an emergency (issue 6
asks for >= 10,000 deliveries/s, so a million households in under two minutes).

What is measured, in a throwaway database (`linli_bench_notification`) with one million synthetic
subscribers, each with a sealed mobile number:
- fan-out: the approval of a broadcast to the whole street, i.e. `broadcasts.approve`: the
  two-person check, the notice, and one delivery row per subscriber written by COPY under the
  (notice, person, channel) idempotency key, in one transaction;
- sending: the service's own `Sender`, pass after pass, until nothing is queued: claim due
  deliveries (FOR UPDATE SKIP LOCKED), open each sealed number, render once per notice, post
  batches of 1,000 to an HTTP provider that accepts everything (a separate process speaking our
  provider protocol), and write every outcome back;
- end to end: approval to the last delivery recorded as sent by the provider.

The yardstick, in the same run, is a raw `COPY` of the same delivery rows into an unindexed table
with the same columns: what the database does with no idempotency key, no queue, no provider.
"""
import shared.green  # noqa: F401,I001  (first: monkey-patches eventlet before psycopg is imported)

import argparse
import random
import subprocess
import sys
import time
from datetime import datetime, timezone

from common import ROOT, Results, config, log, server_version, throwaway_database
from shared import envelope
from shared.db import connect, transaction
from shared.facts import Signer
from shared.protect import Vault

STREET = "310110012"
COMMUNITIES = [f"{STREET}{n:03d}" for n in range(1, 51)]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "秀英桂兰志强建国丽娟明华玉梅海燕文杰俊杰淑珍国庆晓东春生美玲德明红霞永刚秋菊家豪子涵宇轩"
RAW_TABLE = ("CREATE TABLE raw_deliveries (notice_id bigint, resident_id bigint, community_code text, channel text, "
             "rank smallint, status text, due_at timestamptz)")
ADMIN = {"actor": "token:bench:王建国", "scope": STREET, "role": "street_admin"}
CHECKER = {"actor": "token:bench:李明", "scope": STREET, "role": "street_admin"}


def nodes(code):
    return {"code": code, "name": "长海路街道" if code == STREET else code}


def prepare(dsn, cfg, n):
    """One million subscribers with sealed numbers, loaded by COPY (not measured)."""
    from services.notification.subscribers import ADDRESS
    vault, rng = Vault.from_config(cfg), random.Random(6)
    with connect(dsn) as conn:
        with conn.cursor().copy("COPY notification.subscribers (resident_id, name, community_code, household_id, "
                                "status, version) FROM STDIN") as copy:
            for i in range(1, n + 1):
                name = rng.choice(SURNAMES) + rng.choice(GIVEN[::2]) + rng.choice(GIVEN[1::2])
                copy.write_row((i, name, COMMUNITIES[i % len(COMMUNITIES)], i, "active", 1))
        with conn.cursor().copy("COPY notification.subscriber_channels (resident_id, channel, address_cipher, source) "
                                "FROM STDIN") as copy:
            for i in range(1, n + 1):
                copy.write_row((i, "sms", vault.seal(f"13{rng.randint(0, 999_999_999):09d}", ADDRESS), "registry"))
        conn.commit()
    with connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE notification.subscribers")
        conn.execute("VACUUM ANALYZE notification.subscriber_channels")


def start_provider(token):
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.providers", "--port", "0", "--token", token,
                             "--name", "bench"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"the provider did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def broadcast(dsn, cfg):
    from services.notification import broadcasts
    source, signer = envelope.source_from_config("notification", cfg), Signer.from_config(cfg)
    with transaction(dsn, "notification", source, signer) as tx:
        b = broadcasts.create(tx, nodes, {"prefix": STREET, "title": "台风“梅花”防御紧急通知", "channels": ["sms"],
                                          "message": "台风“梅花”预计今晚登陆，请关好门窗，非必要不外出。"}, ADMIN)
        broadcasts.submit(tx, b["id"], ADMIN)
    start = time.perf_counter()
    with transaction(dsn, "notification", source, signer) as tx:
        view = broadcasts.approve(tx, nodes, b["id"], CHECKER, datetime.now(timezone.utc), 19)
    return time.perf_counter() - start, view


def send_all(dsn, cfg, url, token, batch):
    from services.notification import channels
    from services.notification.sender import Sender
    sender = Sender({"sms": [channels.HttpProvider("bench", "sms", url, token, timeout=30)]}, Vault.from_config(cfg),
                    rates={}, batch=batch)
    sent, passes = 0, 0
    start = time.perf_counter()
    with connect(dsn) as conn:
        conn.execute('SET search_path TO "notification"')
        conn.commit()
        while True:
            with conn.transaction():
                n = sender.send_once(conn)
            passes += 1
            sent += n
            if n == 0:
                break
    return time.perf_counter() - start, sent, passes


def raw_copy(dsn, notice_id, n):
    now = datetime.now(timezone.utc)
    with connect(dsn) as conn:
        conn.execute(RAW_TABLE)
        conn.commit()
        start = time.perf_counter()
        with conn.cursor().copy("COPY raw_deliveries FROM STDIN") as copy:
            for i in range(1, n + 1):
                copy.write_row((notice_id, i, COMMUNITIES[i % len(COMMUNITIES)], "sms", 0, "queued", now))
        conn.commit()
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000, help="deliveries claimed per sender pass")
    args = parser.parse_args()
    from shared.migrations import migrate

    cfg = config()
    token = "bench-provider-token"
    provider, url = start_provider(token)
    try:
        with throwaway_database(cfg["DATABASE_URL"], "linli_bench_notification") as dsn:
            migrate(dsn, ["notification"])
            log(f"loading {args.subscribers:,} subscribers")
            prepare(dsn, cfg, args.subscribers)
            log("approving the broadcast (fan-out)")
            fan_out, view = broadcast(dsn, cfg)
            queued = view["deliveries_queued"]
            log(f"fan-out: {queued:,} deliveries in {fan_out:.2f} s ({queued / fan_out:,.0f}/s)")
            sending, claimed, passes = send_all(dsn, cfg, url, token, args.batch)
            with connect(dsn) as conn:
                rows = conn.execute("SELECT status, count(*) AS n FROM notification.deliveries GROUP BY status")
                counts = {r["status"]: r["n"] for r in rows}
            assert queued == args.subscribers and counts == {"sent": args.subscribers}, counts
            log(f"sending: {claimed:,} in {sending:.2f} s ({claimed / sending:,.0f}/s, {passes} passes)")
            raw = raw_copy(dsn, view["notice_id"], args.subscribers)
            log(f"raw COPY of the same rows: {raw:.2f} s ({args.subscribers / raw:,.0f} rows/s)")
    finally:
        provider.terminate()
        provider.wait(timeout=10)
    total = fan_out + sending
    n = args.subscribers
    results = Results({"subscribers": n, "batch": args.batch, "provider_batch": 1000})
    results.add("notification_broadcast", round(n / total), "deliveries/s", ratio=raw / total,
                seconds=round(total, 3), fan_out_s=round(fan_out, 3), fan_out_per_s=round(n / fan_out),
                sending_s=round(sending, 3), sending_per_s=round(n / sending), raw_copy_rows_per_s=round(n / raw),
                goal="deliveries/s >= 10000 (a million households in under two minutes)")
    results.finish({"postgresql": server_version(cfg["DATABASE_URL"])})


if __name__ == "__main__":
    main()
