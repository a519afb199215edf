"""The built image itself, every layer of it: no compiler, no package caches, no source tree, no secrets.

tests/unit/test_image.py holds the Dockerfile to these rules; this reads what the build produced
(`podman save`), so a file a base or a step leaves behind, or one removed in a later layer but still
shipped in an earlier one, is found too.
"""
import hashlib
import json
import os
import re
import tarfile

import pytest

from tests.containers.conftest import podman

COMPILERS = re.compile(r"^usr/(local/)?bin/(gcc|g\+\+|cc|c\+\+|clang|make|cpp|x86_64-linux-gnu-gcc)(-[\d.]+)?$")
CACHES = re.compile(r"^(var/cache/apt/archives/.+\.deb|var/lib/apt/lists/[^/]+_[^/]+|root/\.cache/.+"
                    r"|home/linli/\.cache/.+|root/\.npm/.+|tmp/.+)$")
SOURCE = re.compile(r"(^|/)(pyproject\.toml|Dockerfile|Makefile|package-lock\.json|\.git/.*|node_modules/.*|"
                    r"console/src/.*|tests/(unit|integration|containers)/.*|deploy/config/.*|\.env)$")
SECRETS = re.compile(r"(^|/)(run/secrets/.+|id_(rsa|ed25519|ecdsa)|[^/]*\.key|linli\.env)$")
# A key in PEM form, header and body (libraries hold the header alone as a constant): a private key
# shipped by mistake, whatever its file is called.
PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n(?:[A-Za-z0-9+/=]{40,}\r?\n){3}")


@pytest.fixture(scope="module")
def layers(image, tmp_path_factory):
    """[(layer, {path: TarInfo}, tar path)] of the image, bottom layer first."""
    archive = tmp_path_factory.mktemp("image") / "image.tar"
    podman("save", "--format", "docker-archive", "--output", str(archive), image, timeout=600)
    out = []
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        for name in manifest["Layers"]:
            layer = tarfile.open(fileobj=outer.extractfile(name))
            out.append((name, layer, {m.name.removeprefix("./"): m for m in layer.getmembers()}))
        yield {"config": json.load(outer.extractfile(manifest["Config"])), "layers": out}


def every_path(layers):
    for name, _, members in layers["layers"]:
        for path in members:
            yield name, path


def test_the_image_runs_linli_as_10001_with_a_health_check(layers):
    config = layers["config"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["linli"]
    assert any("/healthz" in part for part in config["Healthcheck"]["Test"])
    for var in config["Env"]:
        name = var.split("=", 1)[0]
        assert not re.search(r"SECRET|PASSWORD|TOKEN|_KEY$|AMQP_URI|DATABASE_URL", name), var


def test_no_compiler_package_cache_or_source_tree_in_any_layer(layers):
    found = {kind: sorted({path for _, path in every_path(layers) if pattern.search(path)})
             for kind, pattern in (("compiler", COMPILERS), ("cache", CACHES), ("source", SOURCE))}
    assert found == {"compiler": [], "cache": [], "source": []}
    paths = {path for _, path in every_path(layers)}
    # What the image is for is in it: the code as an installed package, and the built console.
    assert any(p.endswith("site-packages/services/registry/service.py") for p in paths)
    assert "home/linli/console/index.html" in paths
    # The builder's wheels were bind-mounted for the install, never copied (Debian's venv keeps pip's
    # and setuptools' own in usr/share/python-wheels).
    assert not [p for p in paths if p.startswith("wheels/") or re.search(r"(^|/)linli-[^/]*\.whl$", p)]


def test_no_secret_in_any_layer(layers):
    named = sorted(path for _, path in every_path(layers) if SECRETS.search(path))
    assert named == []
    # The CA bundle handed to the build as a secret never became a file of the image; nor did any
    # private key.
    bundle = os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
    given = hashlib.sha256(open(bundle, "rb").read()).hexdigest() if os.path.exists(bundle) else None
    keys = []
    for name, layer, members in layers["layers"]:
        for path, member in members.items():
            if not member.isfile() or member.size > 5_000_000:
                continue
            data = layer.extractfile(member).read()
            # Shared libraries embed self-test keys (GnuTLS's FIPS tests); a key shipped by mistake is a file.
            if not data.startswith(b"\x7fELF") and PRIVATE_KEY.search(data):
                keys.append(path)
            # The image's own bundle may equal the host's where the host trusts only Debian's CAs.
            if given and path != "etc/ssl/certs/ca-certificates.crt" and hashlib.sha256(data).hexdigest() == given:
                keys.append(f"{path} (the build's CA secret)")
    assert keys == []
