# Linli service image: one image for every service and level; the command picks the service
# (`linli run registry`, `linli run gateway`, `linli migrate`, ...) and env vars pick the node.

ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:20-slim

# --- builder: turn the project and all its pinned dependencies into wheels ---------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Every pinned dependency ships manylinux wheels for CPython 3.11, so no compiler is installed
# here; if one ever needs compiling, add build-essential to this stage only.
COPY . .
# Where PyPI is reached through a TLS-inspecting proxy, deploy/image/build.sh passes the host's CA
# bundle as this secret: it is mounted for this step only and never becomes a layer.
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
 && pip wheel --wheel-dir /wheels . \
 && cd /wheels && sha256sum -- *.whl > /wheels.sha256
# The console's API types are generated from the OpenAPI document, which the code writes.
RUN pip install --no-cache-dir --no-index --find-links=/wheels linli \
 && linli openapi > /openapi.json

# --- console: the web pages, built by Vite from the lockfile (served by the gateway at /console/) --
# Without a registry, deploy/image/build.sh builds them on the host from the same lockfile and
# replaces this stage with `--build-context console=...` (a folder holding console/dist).
FROM ${NODE_IMAGE} AS console
WORKDIR /console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY console/ ./
COPY --from=builder /openapi.json ./openapi.json
RUN npm run types && npm run build

# --- runtime: slim, no build tools, no source tree, non-root ---------------------------------
FROM ${PYTHON_IMAGE}
# PSYCOPG_WAIT_FUNC: psycopg's default C wait function blocks the whole eventlet hub
# (DESIGN.md section 6). HEALTH_PORT: the port the HEALTHCHECK probes; services other than the
# gateway set it to their METRICS_PORT.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CONSOLE_DIR=/home/linli/console \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PSYCOPG_WAIT_FUNC=wait_select \
    HEALTH_PORT=8000

# Fixed numeric ids so Kubernetes' runAsNonRoot can verify the user without resolving names.
RUN groupadd --system --gid 10001 linli \
 && useradd --system --uid 10001 --gid linli --home-dir /home/linli --create-home \
        --shell /usr/sbin/nologin linli

# What the install below takes, by digest. A RUN's cache key does not cover what it bind-mounts
# (podman's buildah reused a layer with the previous code in it); this COPY's key does.
COPY --from=builder /wheels.sha256 /usr/local/share/linli/wheels.sha256
# Bind-mount the wheels rather than COPY them, so they never become a layer of this image.
# Versions are pinned in pyproject.toml and --no-index allows nothing but the builder's wheels.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels linli

# The built pages only (static files, owned by root: the service cannot change them).
COPY --from=console /console/dist /home/linli/console

USER 10001:10001
WORKDIR /home/linli
EXPOSE 8000

# slim has no curl; the interpreter is already here. urlopen raises on a refused connection or
# any HTTP status >= 400, which makes python exit non-zero. The port is read in Python (same
# meaning as ${HEALTH_PORT:-8000}) so the check needs no shell.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('HEALTH_PORT') or '8000'), timeout=4)"]

# Exec form: linli is PID 1 and receives SIGTERM directly from `docker stop` / the kubelet.
ENTRYPOINT ["linli"]
CMD ["run", "gateway"]
