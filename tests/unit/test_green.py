"""shared.green itself selects the green wait function; nothing else has to set it."""
import os
import subprocess
import sys


def test_importing_shared_green_makes_psycopg_wait_green():
    env = {k: v for k, v in os.environ.items() if k != "PSYCOPG_WAIT_FUNC"}
    code = "import shared.green, psycopg.waiting as w; print(w.wait is w.wait_select)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_importing_psycopg_first_is_refused():
    env = {k: v for k, v in os.environ.items() if k != "PSYCOPG_WAIT_FUNC"}
    out = subprocess.run([sys.executable, "-c", "import psycopg, shared.green"], env=env,
                         capture_output=True, text=True)
    assert out.returncode != 0 and "import shared.green first" in out.stderr
