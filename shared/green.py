"""Eventlet + psycopg set-up; must run before anything imports psycopg.

psycopg 3's default C wait function blocks the whole eventlet hub, so queries
from different greenthreads would run one after another (DESIGN.md §6).
Selecting the pure-Python `wait_select` makes psycopg wait through the
monkey-patched `select`, and queries overlap. Import this module first in
every entry point (CLI, service runner, tests).
"""
import os
import sys

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

if "psycopg" in sys.modules and not os.environ.get("LINLI_ALLOW_LATE_PSYCOPG"):
    raise RuntimeError(
        "psycopg was imported before shared.green: import shared.green first, "
        "or psycopg will block the eventlet hub"
    )

import warnings  # noqa: E402

# eventlet warns that it is in maintenance mode; nameko 2.x has no other hub (DESIGN.md §6).
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()
