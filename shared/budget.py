"""The connection budget: how many PostgreSQL connections a process, an instance and a tree may hold.

A stock PostgreSQL allows 100 connections, and a whole tree (the local one, Compose's, an
overlay's pods at their autoscalers' maxima) must leave at least 30% of them free for the CLI,
psql, backups and a rolling update. A process may hold:

- its workers' pool: DB_POOL_MAX (or its service's entry in DB_POOL_SIZES), never more than
  nameko's max_workers, because a worker holds at most one connection;
- one connection per background loop that runs on its own: the outbox relay's pool and its
  LISTEN connection, the notification sender's, the aggregator's facts consumer.

The census is taken from the service as it is built (its dependency providers' pools and
listeners, after `setup`), not from a table kept by hand, so a pool added or resized in the code
changes the budget the tests check.
"""
import math
import re
import shlex

SPARE = 0.30  # of max_connections, kept free
NAMEKO_MAX_WORKERS = 10  # nameko's default for `max_workers`


def worker_pool_size(cfg, service):
    """The size of a service's worker pool: configured, but no larger than its workers can use."""
    wanted = (cfg.get("DB_POOL_SIZES") or {}).get(service, cfg.get("DB_POOL_MAX", 4))
    return max(1, min(int(wanted), int(cfg.get("max_workers", NAMEKO_MAX_WORKERS))))


def allowance(max_connections):
    """How many connections the tree may hold on a server allowing `max_connections`."""
    return math.floor(max_connections * (1 - SPARE))


def fits(total, max_connections):
    return total <= allowance(max_connections)


def _ours(obj):
    return type(obj).__module__.split(".")[0] in ("shared", "services")


def _holders(obj, depth=2, seen=None):
    """Connection pools and LISTEN loops reachable from a dependency provider's attributes."""
    from psycopg_pool import ConnectionPool
    from shared.wakeup import WakeLoop
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for value in vars(obj).values():
        if isinstance(value, ConnectionPool):
            if id(value) not in seen:   # a pool shared by two parts (the relay's) is counted once
                seen.add(id(value))
                yield value.name, value.max_size
        elif isinstance(value, WakeLoop):
            yield f"LISTEN {value.channel}", 1
        elif depth > 0 and hasattr(value, "__dict__") and _ours(value):
            yield from _holders(value, depth - 1, seen)


def census(service, cfg):
    """{what: connections} for one process of `service` (a name in linli.SERVICES) under `cfg`."""
    from nameko.containers import ServiceContainer
    from nameko.extensions import DependencyProvider
    from nameko.rpc import RpcProxy

    from linli import service_class
    container = ServiceContainer(service_class(service), dict(cfg))
    held = {}
    for dep in container.dependencies:
        if not isinstance(dep, DependencyProvider) or isinstance(dep, RpcProxy) or not _ours(dep):
            continue
        dep.setup()  # builds the pools (unopened: nothing connects)
        for what, n in _holders(dep):
            held[what] = held.get(what, 0) + n
    return held


def process_connections(service, cfg):
    return sum(census(service, cfg).values())


# -- trees --------------------------------------------------------------------------------------

_RUN = re.compile(r"(?:^|\s)linli\s+run\s+(\w+)")


def procfile(path, default_config, environ=None):
    """[(process name, service, cfg)] for every `linli run` line of a Procfile (the Procfile format).

    Each line's own `LINLI_CONFIG=…` picks its instance's file; lines without one use
    `default_config`, as the local runner does (LINLI_CONFIG from the Makefile).
    """
    from shared import config as config_mod
    processes = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            name, command = line.split(":", 1)
            run = _RUN.search(command)
            if not run:
                continue
            env = dict(w.split("=", 1) for w in shlex.split(command[:run.start()]) if "=" in w)
            cfg_path = env.pop("LINLI_CONFIG", default_config)
            cfg = config_mod.load(cfg_path, environ={**(environ or {}), **env})
            processes.append((name.strip(), run.group(1), cfg))
    return processes


def total(processes, replicas=None):
    """Sum over [(name, service, cfg)]; `replicas` maps a name to how many copies may run (default 1)."""
    return sum(process_connections(service, cfg) * (replicas or {}).get(name, 1) for name, service, cfg in processes)
