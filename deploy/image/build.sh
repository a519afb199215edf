#!/usr/bin/env bash
# Build Linli's one service image (the Dockerfile at the root) with podman, on a machine with or
# without a container registry.
#
#   deploy/image/build.sh [TAG]          (default linli:latest, also tagged linli:<version>; `make image`)
#
# - Base: python:3.11-slim when a registry answers; otherwise a Debian bookworm root filesystem
#   bootstrapped with mmdebstrap from the mirrors apt is configured with, its Python 3.11 in a venv
#   on PATH (Debian's own python refuses `pip install`), imported as localhost/linli-python-base.
#   The bootstrapped base is kept in podman's storage under a tag naming its recipe, so a second
#   build does not bootstrap again.
# - Console: built in the image from the lockfile when the Node.js image can be pulled; otherwise
#   built here (deploy/local/build-console.sh, the same lockfile and the same OpenAPI document) and
#   handed to the build in place of the Dockerfile's console stage.
# - pip inside the build trusts what this machine's pip trusts: the host's CA bundle is given as a
#   build secret (a TLS-inspecting proxy signs PyPI's certificates), never as a layer.
# - Podman itself (and mmdebstrap, runc) are installed from Debian's packages when missing, and
#   where the machine refuses podman's default rlimits or crun's cgroup handling, a drop-in
#   containers.conf sets runc and limits within the machine's hard ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${1:-linli:latest}
PYTHON_IMAGE=${PYTHON_IMAGE:-docker.io/library/python:3.11-slim}
NODE_IMAGE=${NODE_IMAGE:-docker.io/library/node:20-slim}
SUITE=bookworm
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"  # never wait for a password: CI has nobody to type it
say() { printf '[image] %s\n' "$*"; }
started=$(date +%s)
# Why no image can be built here, for the container stage to skip with (tests/containers/conftest.py).
UNAVAILABLE=var/image/unavailable
give_up() {
  say "$1"
  mkdir -p "$(dirname "$UNAVAILABLE")" && printf '%s\n' "$1" > "$UNAVAILABLE"
  exit 3
}
# A reason left by an earlier run counts only if this run gives up too (the Makefile checks both).
rm -f "$UNAVAILABLE"

# --- podman ---------------------------------------------------------------------------------
need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v slirp4netns >/dev/null 2>&1 || need+=(slirp4netns)
command -v newuidmap >/dev/null 2>&1 || need+=(uidmap)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} from Debian packages"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    give_up "cannot install ${need[*]} from Debian's packages: no image is built on this machine"
  fi
fi

podman info >/dev/null 2>&1 || give_up "podman does not work on this machine: $(podman info 2>&1 | tail -1)"

# A throw-away container of whatever base is at hand tells whether podman runs containers here.
runs() { podman run --rm --network none "$1" true 2>&1 >/dev/null; }
CONF=/etc/containers/containers.conf.d/50-linli.conf
configure_runtime() {
  local conf=$CONF hard_files procs
  hard_files=$(ulimit -Hn)
  # nproc below the hard limit: at the limit itself the kernel refused it on CI's machines.
  procs=$(ulimit -Hu)
  if [ "$procs" = unlimited ] || [ "$procs" -gt 65536 ]; then procs=32768; else procs=$((procs / 2)); fi
  say "podman's defaults are refused here: writing $conf (runc, cgroupfs, rlimits within the hard ones)"
  $SUDO mkdir -p "$(dirname "$conf")" || give_up "cannot write $conf"
  printf '%s\n' "# Written by deploy/image/build.sh: this machine refuses podman's default rlimits or crun's cgroups." \
    '[containers]' "default_ulimits = [\"nofile=${hard_files}:${hard_files}\", \"nproc=${procs}:${procs}\"]" \
    '[engine]' 'runtime = "runc"' 'cgroup_manager = "cgroupfs"' | $SUDO tee "$conf" >/dev/null \
    || give_up "cannot write $conf"
}

# --- the base -------------------------------------------------------------------------------
# The recipe's hash names the bootstrapped base: change the recipe and the next build makes a new one.
# The file of apt's sources that names Debian's $SUITE (deb822 or one-line form; mmdebstrap reads
# either), not whichever third-party repository sorts first.
debian_sources() {
  local file
  for file in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    if grep -qE "^(Suites:.*[[:space:]]$SUITE([[:space:]]|\$)|deb[[:space:]].*[[:space:]]$SUITE[[:space:]])" "$file" \
       && grep -qE '^(URIs:|deb[[:space:]]).*debian' "$file"; then
      echo "$file"; return
    fi
  done
}
SOURCES=$(debian_sources)
bootstrap_recipe() {
  printf '%s\n' "$SUITE" "python3 python3-venv ca-certificates" "venv /opt/python" "no docs" "v1"
  grep -v '^#' "$SOURCES"
}
bootstrap_base() {
  local tag=$1 sources=$SOURCES
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  say "bootstrapping a Debian $SUITE base with Python 3.11 from $(grep -v '^#' "$sources" | grep -m1 -oE 'https?://[^ ]+' || echo "$sources")"
  # minbase: dpkg, apt and what Priority: required brings (passwd for useradd). Documentation,
  # manual pages and translations are never installed; apt's lists and downloads are removed.
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='chroot "$1" python3 -m venv /opt/python' \
    "$SUITE" "$tmp/rootfs.tar" "$sources"
  podman import --quiet \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python"]' \
    "$tmp/rootfs.tar" "$tag" >/dev/null
  rm -rf "$tmp"
}

base=""
if podman image exists "$PYTHON_IMAGE" || timeout 120 podman pull --quiet "$PYTHON_IMAGE" >/dev/null 2>&1; then
  base=$PYTHON_IMAGE
  say "base: $base"
else
  [ -n "$SOURCES" ] || give_up "no registry answers for $PYTHON_IMAGE, and apt has no Debian $SUITE source to bootstrap a base from"
  base="localhost/linli-python-base:$SUITE-$(bootstrap_recipe | sha256sum | cut -c1-12)"
  if podman image exists "$base"; then
    say "no registry answers for $PYTHON_IMAGE; base: $base (bootstrapped before, kept)"
  else
    say "no registry answers for $PYTHON_IMAGE"
    bootstrap_base "$base"
  fi
fi
# Only the refusals seen on CI's machines are worked around, and only while the workaround works.
if ! refused=$(runs "$base"); then
  if [ ! -f "$CONF" ] && grep -qE 'setrlimit|rlimit|cgroups in hybrid mode' <<<"$refused"; then
    configure_runtime
    if ! refused=$(runs "$base"); then
      $SUDO rm -f "$CONF"
      give_up "podman cannot run a container on this machine: $(tail -1 <<<"$refused")"
    fi
  else
    give_up "podman cannot run a container on this machine: $(tail -1 <<<"$refused")"
  fi
fi

# --- the console ----------------------------------------------------------------------------
console_args=()
if podman image exists "$NODE_IMAGE" || timeout 120 podman pull --quiet "$NODE_IMAGE" >/dev/null 2>&1; then
  say "console: built in the image on $NODE_IMAGE"
else
  say "no registry answers for $NODE_IMAGE: the console is built here and handed to the build"
  deploy/local/build-console.sh
  staged=var/image/console-stage
  rm -rf "$staged" && mkdir -p "$staged/console"
  cp -a console/dist "$staged/console/dist"
  # Replaces the Dockerfile's `console` stage: COPY --from=console reads /console/dist from here.
  console_args=(--build-context "console=$staged")
fi

# --- the build ------------------------------------------------------------------------------
secret_args=()
ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$ca" ] && secret_args=(--secret "id=ca-certificates,src=$ca")
# --format docker: the OCI format has no HEALTHCHECK, and podman would drop it.
podman build --format docker --layers --tag "$TAG" \
  --build-arg "PYTHON_IMAGE=$base" --build-arg "NODE_IMAGE=$NODE_IMAGE" \
  ${secret_args[@]+"${secret_args[@]}"} ${console_args[@]+"${console_args[@]}"} .
# The release tag too, which the overlays name (k8s/overlays/*/kustomization.yaml: images).
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
[ -z "$version" ] || [ "$TAG" != linli:latest ] || podman tag "$TAG" "linli:$version"
rm -f "$UNAVAILABLE"
size=$(podman image inspect "$TAG" --format '{{.Size}}')
say "built $TAG: $((size / 1000000)) MB in $(( $(date +%s) - started )) s (base $base)"
