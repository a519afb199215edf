# Linli: two commands on a fresh machine — `make up` (a street instance with demo data) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LINLI_CONFIG ?= deploy/config/local.yaml
RUN := var/run
LOG := var/log
API := http://127.0.0.1:8000

.PHONY: up down test unit integration bench services venv logs status clean

$(BIN)/linli: pyproject.toml
	@test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/linli

services:
	@deploy/local/ensure-services.sh linli linli

up: services venv
	@mkdir -p $(RUN) $(LOG)
	@$(MAKE) -s down >/dev/null 2>&1 || true
	@$(BIN)/linli migrate
	@$(BIN)/linli topology apply | tail -n1
	@$(BIN)/linli demo load
	@PATH=$(CURDIR)/$(BIN):$$PATH nohup $(BIN)/honcho -f Procfile start > $(LOG)/linli.log 2>&1 & echo $$! > $(RUN)/honcho.pid
	@for i in $$(seq 1 60); do curl -fsS $(API)/readyz >/dev/null 2>&1 && break; sleep 0.5; done
	@curl -fsS $(API)/readyz >/dev/null || { echo "gateway did not become ready; see $(LOG)/linli.log"; tail -n 30 $(LOG)/linli.log; exit 1; }
	@$(BIN)/linli demo notices
	@token=$$($(BIN)/linli token create --name "长海路街道 演示管理员" --role street_admin); \
	 echo "$$token" > $(RUN)/demo-token; \
	 echo; echo "Linli street instance 310110012 (长海路街道) is up."; \
	 echo "  API          $(API)/api/v1/nodes   (Authorization: Bearer $$token)"; \
	 echo "  OpenAPI      $(API)/api/v1/openapi.json"; \
	 echo "  metrics      $(API)/metrics (gateway), http://127.0.0.1:9101/metrics (registry), http://127.0.0.1:9102/metrics (points), :9103 (consultation), :9104 (notification), :9105 (aggregator)"; \
	 echo "  health       $(API)/healthz  $(API)/readyz"; \
	 echo "  RabbitMQ     http://127.0.0.1:15672 (guest/guest, vhost linli)"; \
	 echo "  logs         $(LOG)/linli.log"; \
	 echo "  try          curl -s -H \"Authorization: Bearer $$token\" $(API)/api/v1/nodes"; \
	 echo "  stop         make down"

down:
	@if [ -f $(RUN)/honcho.pid ]; then kill $$(cat $(RUN)/honcho.pid) 2>/dev/null || true; rm -f $(RUN)/honcho.pid; echo "stopped"; fi

status: venv
	@$(BIN)/linli outbox status

logs:
	@tail -f $(LOG)/linli.log

# The whole suite against real PostgreSQL and RabbitMQ (installed and started if missing).
test: services venv
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: venv
	@$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: services venv
	@mkdir -p bench/results
	@for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean: down
	rm -rf $(VENV) var *.egg-info
