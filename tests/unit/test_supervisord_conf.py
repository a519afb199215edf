"""The local tree's supervisord configuration, generated from the Procfile (deploy/local/supervisord_conf.py).

The real Procfile is rendered and read back by supervisor's own parser: every process of the
Procfile (and of the connection budget, which reads the same file) is a program with its line's
settings, restarted whatever its exit, retried with back-off far beyond supervisord's default of
three tries, logged to its own file and to the combined log's listener, and stopped with the
others as one group. The listener's line and state formatting is checked on its own.
tests/integration/test_supervisor.py runs a generated configuration and kills a process.
"""
import importlib.util
import io
import pathlib
import time

import pytest
from supervisor.datatypes import RestartUnconditionally
from supervisor.options import EventListenerPoolConfig, ServerOptions

from shared import budget

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / "local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conf = _load("supervisord_conf")
listener = _load("supervisor_logs")


def parsed(text):
    """supervisor's own reading of a configuration: {group name: group config}."""
    options = ServerOptions()
    options.configfile = io.StringIO(text)
    options.process_config(do_usage=False)
    assert not options.parse_criticals and not options.parse_warnings
    return {group.name: group for group in options.process_group_configs}


@pytest.fixture(scope="module")
def procfile():
    return conf.read_procfile((ROOT / "Procfile").read_text(encoding="utf-8"))


@pytest.fixture
def groups(procfile, tmp_path):
    # supervisor's parser wants the log directory to exist.
    return parsed(conf.render(procfile, run_dir=tmp_path, log_dir=tmp_path, bin_dir=ROOT / ".venv" / "bin"))


def test_every_process_of_the_procfile_is_a_program_with_its_own_settings(procfile, groups, tmp_path):
    programs = {p.name: p for p in groups["linli"].process_configs}
    # The same 17 processes the connection budget counts (`linli check-config --tree Procfile`).
    counted = budget.procfile(ROOT / "Procfile", str(ROOT / "deploy" / "config" / "local.yaml"))
    assert set(programs) == {name for name, _, _ in counted} == {name for name, _, _ in procfile}
    assert len(programs) == 17
    for name, env, argv in procfile:
        program = programs[name]
        assert program.command.split()[1:] == argv[1:], name
        assert program.command.split()[0] == str(ROOT / ".venv" / "bin" / "linli"), name
        assert program.directory == str(ROOT), name
        for key, value in env.items():
            assert program.environment[key] == value, (name, key)
        assert program.environment["PATH"].startswith(str(ROOT / ".venv" / "bin") + ":"), name
        assert program.stdout_logfile == str(tmp_path / f"{name}.log"), name
        assert program.redirect_stderr and program.stdout_events_enabled, name
    assert programs["yangpu-gateway"].environment["LINLI_CONFIG"] == "deploy/config/local-310110.yaml"
    # Street 310110012's lines take LINLI_CONFIG from supervisord's environment (the Makefile's).
    assert "LINLI_CONFIG" not in programs["changhai-registry"].environment


def test_a_process_that_exits_is_started_again_and_retried_with_back_off_for_long(groups):
    for program in groups["linli"].process_configs:
        assert program.autostart, program.name
        assert program.autorestart is RestartUnconditionally, program.name  # whatever its exit code
        assert program.startsecs == conf.STARTSECS == 10, program.name
        # supervisord waits 1 s, 2 s, 3 s ... between tries of a process that dies while starting;
        # its default of 3 tries gives up after 6 s. These last for days of outage.
        assert program.startretries == conf.STARTRETRIES >= 1000, program.name
        assert sum(range(1, program.startretries + 1)) > 5 * 24 * 3600
        assert program.stopasgroup and program.killasgroup, program.name
        assert program.stopwaitsecs == conf.STOPWAITSECS, program.name


def test_the_combined_log_listener_starts_first_and_hears_every_line_and_state(groups, tmp_path):
    logs = groups["logs"]
    assert isinstance(logs, EventListenerPoolConfig)
    (process,) = logs.process_configs
    assert process.command.split()[1:3] == [str(ROOT / "deploy" / "local" / "supervisor_logs.py"),
                                            str(tmp_path / "linli.log")]
    assert logs.priority < groups["linli"].priority  # started first, stopped last
    assert process.autorestart is RestartUnconditionally
    names = {event.__name__ for event in logs.pool_events}
    assert {"ProcessLogEvent", "ProcessStateEvent"} <= names
    assert logs.buffer_size >= 10000


def test_the_supervisor_answers_on_a_socket_under_the_run_directory(tmp_path, procfile):
    text = conf.render(procfile, run_dir=tmp_path / "run", log_dir=tmp_path / "log")
    assert f"file={tmp_path / 'run' / 'supervisor.sock'}" in text
    assert f"serverurl=unix://{tmp_path / 'run' / 'supervisor.sock'}" in text
    assert f"pidfile={tmp_path / 'run' / 'supervisord.pid'}" in text


def test_procfile_lines_are_read_as_honcho_reads_them():
    text = """# a comment

web: A=1 B="two words" python -m http.server 8080
worker:python -c 'print(1)'
"""
    assert conf.read_procfile(text) == [
        ("web", {"A": "1", "B": "two words"}, ["python", "-m", "http.server", "8080"]),
        ("worker", {}, ["python", "-c", "print(1)"]),
    ]
    # A percent sign is supervisord's interpolation: it reaches the process as written.
    (program,) = parsed(conf.render(conf.read_procfile("p: RATE=5% sleep 100%"), run_dir="/tmp",
                                    log_dir="/tmp"))["linli"].process_configs
    assert program.environment["RATE"] == "5%" and program.command.endswith("sleep 100%")


@pytest.mark.parametrize("text, message", [
    ("web python app.py", "expected `name: command`"),
    ("web: A=1", "has no command"),
    ("web: a\nweb: b", "processes named twice: web"),
    ("bad name: a", "expected `name: command`"),
])
def test_a_procfile_the_supervisor_could_not_run_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        conf.read_procfile(text)


def test_the_listener_prefixes_whole_lines_and_says_what_the_supervisor_did():
    out = io.StringIO()
    log = listener.CombinedLog(out, width=8, clock=lambda: time.struct_time((2026, 12, 4, 9, 5, 7, 4, 338, 0)))
    head = b"processname:alpha groupname:linli pid:41 channel:stdout\n"
    log.handle("PROCESS_LOG_STDOUT", head + b"one\ntw")
    log.handle("PROCESS_LOG_STDOUT", head + "o 二\n".encode())
    log.handle("PROCESS_STATE_EXITED", b"processname:alpha groupname:linli from_state:RUNNING expected:0 pid:41")
    log.handle("PROCESS_STATE_BACKOFF", b"processname:alpha groupname:linli from_state:STARTING tries:3")
    log.handle("PROCESS_STATE_STARTING", b"processname:alpha groupname:linli from_state:BACKOFF tries:3")
    log.handle("PROCESS_STATE_RUNNING", b"processname:alpha groupname:linli from_state:STARTING pid:42")
    assert out.getvalue().splitlines() == [
        "09:05:07 alpha    | one",
        "09:05:07 alpha    | two 二",
        "09:05:07 supervisord | alpha exited (pid 41); starting it again",
        "09:05:07 supervisord | alpha died while starting (try 3); next try in 3 s",
        "09:05:07 supervisord | alpha running (pid 42)",
    ]
