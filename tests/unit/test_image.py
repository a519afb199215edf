"""The service image, checked without a Docker engine.

Two halves. The Dockerfile is parsed (dockerfile-parse) and its final stage held to the issue's
rules: non-root numeric user, a health check on /healthz, `linli` as the entrypoint, and nothing
but the builder's wheels installed (no compiler, no source tree). Then the builder's own step is
run for real on what the build context would hold after `.dockerignore`: `pip wheel` of the
project, and the wheel is imported on its own to prove the image would carry every migration and
the demo tree, which live outside Python files and are easy to leave behind.
"""
import fnmatch
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest
from dockerfile_parse import DockerfileParser

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "git", "libpq-dev", "python3-dev")


@pytest.fixture(scope="module")
def stages():
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    out = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            out.append([])
        if out:
            out[-1].append((instruction["instruction"], instruction["value"]))
    return out


def values(stage, name):
    return [value for instruction, value in stage if instruction == name]


def test_builder_console_and_runtime_stages(stages):
    assert len(stages) == 3
    builder, console, runtime = stages
    assert values(builder, "FROM")[0].split()[-2:] == ["AS", "builder"]
    assert values(console, "FROM")[0].split()[-2:] == ["AS", "console"]
    assert values(runtime, "FROM")[0] == values(builder, "FROM")[0].split()[0]
    # The console is built from its lockfile, with types from the code's own OpenAPI document.
    runs = " ".join(values(console, "RUN"))
    assert "npm ci" in runs and "npm run types" in runs and "npm run build" in runs


def test_runtime_runs_as_a_numeric_non_root_user(stages):
    users = values(stages[-1], "USER")
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_runtime_has_a_health_check_and_linli_as_entrypoint(stages):
    runtime = stages[-1]
    health = values(runtime, "HEALTHCHECK")
    assert len(health) == 1 and "/healthz" in health[0] and "CMD" in health[0]
    assert json.loads(values(runtime, "ENTRYPOINT")[-1]) == ["linli"]
    assert json.loads(values(runtime, "CMD")[-1])[0] == "run"


def test_runtime_installs_only_the_builders_wheels(stages):
    runtime = stages[-1]
    assert not values(runtime, "ADD"), "no source tree in the image"
    # The digests of the wheels (so the install's layer is rebuilt when they change) and the console's
    # built pages, each from its own stage; nothing of the source tree.
    assert values(runtime, "COPY") == ["--from=builder /wheels.sha256 /usr/local/share/linli/wheels.sha256",
                                       "--from=console /console/dist /home/linli/console"]
    runs = " ".join(values(runtime, "RUN"))
    assert "apt-get install" not in runs and "apk add" not in runs
    for tool in BUILD_TOOLS:
        assert f" {tool} " not in f" {runs} ", f"{tool} in the final stage"
    installs = [run for run in values(runtime, "RUN") if "pip install" in run]
    assert len(installs) == 1
    assert "--no-index" in installs[0] and "from=builder" in installs[0]


def ignored(relative, patterns):
    """Docker's .dockerignore matching, for the patterns this project uses (no negations)."""
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            return True
    return False


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The build context `COPY . .` sees: the repository less what .dockerignore drops."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "ignored() handles no negations"
    target = tmp_path_factory.mktemp("context")
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        rel = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not ignored(rel + d, patterns)]
        for name in filenames:
            if not ignored(rel + name, patterns):
                (target / rel).mkdir(parents=True, exist_ok=True)
                shutil.copy2(os.path.join(dirpath, name), target / rel / name)
    return target, patterns


def test_dockerignore_keeps_local_state_and_secrets_out(context):
    _, patterns = context
    for local in (".git", ".venv", "var", "bench/results", "linli.egg-info"):
        assert ignored(local, patterns), local


@pytest.fixture(scope="module")
def wheel(context, tmp_path_factory):
    source, _ = context
    out = tmp_path_factory.mktemp("wheels")
    # The builder stage's command, less the dependencies (the venv already holds them pinned).
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source)],
                   check=True, capture_output=True, timeout=300)
    [built] = out.glob("linli-*.whl")
    unpacked = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(built) as archive:
        archive.extractall(unpacked)
    return unpacked


def test_wheel_declares_the_linli_command(wheel):
    [entry_points] = wheel.glob("linli-*.dist-info/entry_points.txt")
    assert "linli = linli.cli:main" in entry_points.read_text(encoding="utf-8")


def test_wheel_carries_every_migration_and_the_demo_tree(wheel, tmp_path):
    source = {}
    for path in [*ROOT.glob("shared/migrations/*.sql"), *ROOT.glob("services/*/migrations/*.sql"),
                 *ROOT.glob("linli/demo/*.yaml")]:
        source[str(path.relative_to(ROOT))] = path.read_bytes()
    for relative, content in source.items():
        assert (wheel / relative).read_bytes() == content, relative

    # Import from the unpacked wheel alone (cwd elsewhere, the wheel first on sys.path), the way
    # the image's `linli migrate` and `linli demo load` would find their files.
    probe = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "import shared, linli.cli, linli.demo; from shared import migrations;"
        "print(json.dumps({'shared': shared.__file__, 'demo': linli.demo.HIERARCHY.is_file(),"
        " 'files': {s: [name for name, _ in migrations.files_for(s)] for s in migrations.services_with_migrations()}}))"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(wheel)], cwd=tmp_path, check=True,
                            capture_output=True, text=True, timeout=60)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["shared"].startswith(str(wheel))
    assert found["demo"] is True
    shared_files = sorted(f"shared/{p.name}" for p in ROOT.glob("shared/migrations/*.sql"))
    for service in ("registry", "points", "consultation", "notification", "gateway", "aggregator"):
        own = sorted(p.name for p in ROOT.glob(f"services/{service}/migrations/*.sql"))
        assert found["files"][service] == shared_files + own, service
