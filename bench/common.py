"""Helpers shared by the `bench/bench_*.py` scripts.

A benchmark measures against real PostgreSQL and RabbitMQ, but never against
the instance's own data: it creates a throwaway database and a throwaway vhost,
and drops both when it ends (also on error or Ctrl-C), so `make bench` can run
next to `make up` without touching the street instance.

Every result is reported twice: a `RESULT name=... value=... unit=... ratio=...`
line on stdout (printed together at the end, so they are the script's final
lines) and `bench/results/<name>.json` with the figures, the parameters and the
machine, because a number without the machine it was measured on means little
(DESIGN.md §6 figures come from a 2-core development machine).

Import `shared.green` before this module (it must precede anything that
imports psycopg); this module imports psycopg through `shared.db`.
"""
import contextlib
import datetime
import json
import math
import os
import pathlib
import platform
import sys
import time
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"

# `make bench` exports LINLI_CONFIG; running a script by hand from anywhere should work too.
os.environ.setdefault("LINLI_CONFIG", str(ROOT / "deploy" / "config" / "local.yaml"))
if not os.path.isabs(os.environ["LINLI_CONFIG"]) and not os.path.exists(os.environ["LINLI_CONFIG"]):
    os.environ["LINLI_CONFIG"] = str(ROOT / os.environ["LINLI_CONFIG"])


def config():
    """The instance configuration (only the connection settings are used)."""
    from shared.config import load
    return load()


# --- results -----------------------------------------------------------------------------------

def machine_info():
    info = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            info["cpu_model"] = next((line.split(":", 1)[1].strip() for line in fh
                                      if line.startswith("model name")), None)
    except OSError:
        pass
    return info


class Results:
    """Collects results; `finish()` prints the RESULT lines last and writes one JSON per result."""

    def __init__(self, parameters=None):
        self.parameters = dict(parameters or {})
        self.machine = machine_info()
        self.items = []

    def add(self, name, value, unit, ratio=None, **details):
        self.items.append({"name": name, "value": value, "unit": unit,
                           "ratio": None if ratio is None else round(ratio, 4), **details})

    def finish(self, versions=None):
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        for item in self.items:
            doc = {**item, "parameters": self.parameters, "machine": self.machine, "versions": versions or {}}
            path = RESULTS_DIR / f"{item['name']}.json"
            path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        for item in self.items:
            print(result_line(item["name"], item["value"], item["unit"], item["ratio"]), flush=True)


def result_line(name, value, unit, ratio=None):
    return f"RESULT name={name} value={fmt(value)} unit={unit} ratio={fmt(ratio, 3)}"


def fmt(x, digits=1):
    if x is None:
        return "nan"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return None
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def log(msg):
    """Progress on stderr, so stdout stays the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- throwaway PostgreSQL database ---------------------------------------------------------------

def _with_dbname(dsn, dbname):
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + dbname))


@contextlib.contextmanager
def throwaway_database(dsn, name):
    """Create database `name` next to `dsn`'s (dropping a leftover first); yields its DSN; drops it."""
    from shared.db import connect
    admin = _with_dbname(dsn, "postgres")

    def drop():
        with connect(admin, autocommit=True) as conn:
            # FORCE ends sessions still open (e.g. a relay's LISTEN connection) instead of failing.
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop()
    with connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(dsn, name)
    finally:
        drop()


def server_version(dsn):
    from shared.db import connect
    with connect(dsn) as conn:
        return conn.execute("SHOW server_version").fetchone()["server_version"]


# --- throwaway RabbitMQ vhost -------------------------------------------------------------------

class Management:
    """The few RabbitMQ management API calls the benchmarks need."""

    def __init__(self, management_url):
        parts = urlsplit(management_url)
        self.auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api"

    def call(self, method, path, **kwargs):
        r = requests.request(method, self.base + path, auth=self.auth, timeout=30, **kwargs)
        r.raise_for_status()
        return r.json() if r.content else None

    def version(self):
        return self.call("GET", "/overview").get("rabbitmq_version")


@contextlib.contextmanager
def throwaway_vhost(management_url, amqp_uri, name):
    """Create vhost `name` (dropping a leftover first) and yield `amqp_uri` pointed at it.

    Deleting the vhost afterwards deletes every exchange and queue the benchmark declared.
    """
    api = Management(management_url)
    vhost = quote(name, safe="")
    user = unquote(urlsplit(amqp_uri).username or "guest")
    with contextlib.suppress(requests.HTTPError):
        api.call("DELETE", f"/vhosts/{vhost}")
    api.call("PUT", f"/vhosts/{vhost}")
    api.call("PUT", f"/permissions/{vhost}/{quote(user, safe='')}",
             json={"configure": ".*", "write": ".*", "read": ".*"})
    try:
        yield urlunsplit(urlsplit(amqp_uri)._replace(path="/" + vhost))
    finally:
        api.call("DELETE", f"/vhosts/{vhost}")
