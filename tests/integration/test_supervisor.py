"""The local tree's supervisor restarts a crashed process and leaves the others alone.

A real supervisord runs a configuration made by the tree's own generator
(deploy/local/supervisord_conf.py, with its real restart and back-off settings) for a Procfile
of three small programs: two that keep running and one that dies as soon as it starts, as a
service does while the broker or the database is away. One running program is killed with SIGKILL,
as the registry died in the broker outage of issue 17: it must come back with a new pid while the
other keeps its pid (honcho stopped the whole tree instead), the crashing one must still be
retried after more tries than supervisord's default would allow, the combined log must show all of
it, and a shutdown (`make down`) must leave no process behind.
"""
import importlib.util
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import xmlrpc.client

import pytest
from supervisor.xmlrpc import SupervisorTransport

from tests.integration.conftest import wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
SUPERVISORD = pathlib.Path(sys.executable).parent / "supervisord"

spec = importlib.util.spec_from_file_location("supervisord_conf", ROOT / "deploy" / "local" / "supervisord_conf.py")
conf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conf)

WORKER = """\
import os, sys, time
print("hello from", os.environ["GREETING"], flush=True)
while True:
    time.sleep(1)
"""
CRASHER = """\
import sys
print("cannot reach the broker", flush=True)
sys.exit(1)
"""


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def tree():
    """A supervisord over alpha, beta (running) and crashing: (rpc client factory, log, pids seen, its Popen)."""
    # Short and outside pytest's tmp_path: a unix socket's path has to fit in 108 bytes.
    home = pathlib.Path(tempfile.mkdtemp(prefix="linli-sv-"))
    (home / "worker.py").write_text(WORKER)
    (home / "crash.py").write_text(CRASHER)
    python = sys.executable
    procfile = (f"alpha: GREETING=alpha {python} worker.py\n"
                f"beta: GREETING=beta {python} worker.py\n"
                f"crashing: {python} crash.py\n")
    config = home / "supervisord.conf"
    config.write_text(conf.render(conf.read_procfile(procfile), root=home, run_dir=home, log_dir=home))
    supervisord = subprocess.Popen([str(SUPERVISORD), "--nodaemon", "-c", str(config)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    def rpc():
        # A new connection per call: one left half-used by a refused call cannot be used again.
        return xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{home / 'supervisor.sock'}"))
    seen = set()
    try:
        yield rpc, home / "linli.log", seen, supervisord
    finally:
        if supervisord.poll() is None:
            supervisord.terminate()
            supervisord.wait(timeout=30)
        for pid in seen:  # nothing the test started may outlive it
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


def info(rpc, name):
    return rpc().supervisor.getProcessInfo(f"linli:{name}")


def running(rpc, name):
    """The pid of `name` once supervisord counts it as started (up for startsecs), else None."""
    try:
        state = info(rpc, name)
    except (OSError, xmlrpc.client.Fault):
        return None  # supervisord not answering yet
    return state["pid"] if state["statename"] == "RUNNING" else None


def test_a_killed_process_comes_back_alone_and_a_crashing_one_keeps_being_retried(tree):
    rpc, log, seen, supervisord = tree
    timeout = conf.STARTSECS + 20
    alpha = wait_for(lambda: running(rpc, "alpha"), timeout=timeout, interval=0.2, message="alpha running")
    beta = wait_for(lambda: running(rpc, "beta"), timeout=timeout, interval=0.2, message="beta running")
    seen |= {alpha, beta}

    os.kill(alpha, signal.SIGKILL)
    again = wait_for(lambda: (running(rpc, "alpha") or 0) not in (0, alpha) and running(rpc, "alpha"),
                     timeout=timeout, interval=0.2, message="alpha started again")
    seen.add(again)
    assert again != alpha and alive(again) and not alive(alpha)
    # The other process was not touched: same pid, still running, never restarted.
    assert info(rpc, "beta")["statename"] == "RUNNING" and info(rpc, "beta")["pid"] == beta and alive(beta)

    # By now the crashing program has died more often than supervisord's default startretries (3)
    # allows before giving up (FATAL); here it is still being tried, one second longer each time.
    crashing = info(rpc, "crashing")
    assert crashing["statename"] in ("BACKOFF", "STARTING"), crashing
    text = log.read_text(encoding="utf-8")
    tries = [line for line in text.splitlines() if "supervisord | crashing died while starting" in line]
    assert len(tries) > 3, text
    assert "gave up" not in text
    assert "next try in 4 s" in text

    # The combined log (`make logs`): each program's lines under its name, and the restart.
    assert text.count("alpha       | hello from alpha") == 2, text
    assert text.count("beta        | hello from beta") == 1, text
    assert "crashing    | cannot reach the broker" in text
    assert f"supervisord | alpha exited (pid {alpha}); starting it again" in text
    assert f"supervisord | alpha running (pid {again})" in text

    # `make down`: shutdown stops every program, then supervisord itself.
    rpc().supervisor.shutdown()
    assert supervisord.wait(timeout=conf.STOPWAITSECS + 15) == 0
    assert not alive(again) and not alive(beta)
