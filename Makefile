# The two commands that matter: `make run` (the whole system, embedded) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# uv comes from PyPI when the machine lacks it; it never downloads a Python interpreter.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
RUN := $(UV) run --frozen
LOCAL := deploy/local

.PHONY: help uv sync lint fmt typecheck contracts contracts-check up down status \
	test test-unit test-integration run k8s-check infra demo bench bench-quick images browser

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check uv

sync: uv  ## install the workspace into .venv from uv.lock
	$(UV) sync --frozen --python 3.11

lint: sync  ## ruff, import-linter (layers, no cycles), and mypy (strict) on every source package
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports
	$(RUN) mypy contracts/src libs/platform/src services/activity/src services/segmentation/src \
		services/calendar-sync/src apps/embedded/src apps/devstack/src apps/demo/src apps/web/src bench/src

fmt: sync  ## format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

contracts: sync  ## regenerate the committed JSON Schemas and AsyncAPI documents
	$(RUN) python -m crm_contracts.generate

contracts-check: sync  ## fail when the committed schemas differ from the models
	$(RUN) python -m crm_contracts.generate --check

infra:  ## start PostgreSQL and Kafka locally and print their connection strings
	@bash $(LOCAL)/require.sh
	@# An assignment fails with its command (pipefail); inside echo's $$(…) a failure was lost.
	@dsn=$$(bash $(LOCAL)/postgres.sh up | tail -n 1); echo "PostgreSQL: $$dsn"
	@bootstrap=$$(bash $(LOCAL)/kafka.sh up | tail -n 1); echo "Kafka:      $$bootstrap"

up: sync infra  ## production-like: PostgreSQL, Kafka, then each service's processes on own ports
	$(RUN) python -m crm_devstack up

down:  ## stop everything `make up` (or `make infra`) started
	-@$(RUN) python -m crm_devstack down
	-@bash $(LOCAL)/kafka.sh down
	-@bash $(LOCAL)/postgres.sh down

status:  ## what is running?
	-@bash $(LOCAL)/postgres.sh status
	-@bash $(LOCAL)/kafka.sh status
	-@$(RUN) python -m crm_devstack status

demo: sync  ## play the sales guide over HTTP against `make run` (or `make up`); see README
	$(RUN) python -m crm_demo

test-unit: sync  ## tests that need nothing running
	$(RUN) pytest tests/unit tests/contracts

test-integration: sync infra  ## tests against the real PostgreSQL and Kafka
	$(RUN) pytest tests/integration

.PHONY: graph-contract
graph-contract: sync  ## the Graph fake's behaviour tests against a Microsoft 365 tenant (GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_CONTRACT_MAILBOX; not in `make test`)
	GRAPH_CONTRACT=1 $(RUN) pytest tests/integration/calendar_sync/test_graph_contract.py -k tenant -v -p no:cacheprovider

images:  ## build the three service images (needs a Docker engine; there is none on the CI machine)
	@command -v docker >/dev/null 2>&1 || { echo "make images needs docker (BuildKit)" >&2; exit 1; }
	for spec in activity:activity segmentation:segmentation calendar-sync:calendar_sync; do \
		service=$${spec%%:*}; module=$${spec##*:}; \
		DOCKER_BUILDKIT=1 docker build -f deploy/docker/Dockerfile --build-arg SERVICE=$$service \
			--build-arg MODULE=$$module -t crm/$$service:$${TAG:-dev} . ; \
	done

k8s-check:  ## render the k8s overlays, validate them (kubeconform -strict), lint the Dockerfile
	bash deploy/tools/k8s-check.sh

browser:  ## Debian's chromium and chromium-driver for the cockpit's browser tests (apt-get as root)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then echo "make browser: please install chromium and chromium-driver (needs root)" >&2; exit 1; fi; \
	echo "make browser: installing chromium chromium-driver" >&2; \
	export DEBIAN_FRONTEND=noninteractive; apt-get update -qq >&2; \
	apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2

test: sync lint contracts-check k8s-check infra browser  ## everything CI runs: lint, drift, k8s, all tests
	$(RUN) pytest tests
	$(RUN) python -m crm_bench --quick --results .cache/bench-quick

bench: sync infra  ## every benchmark with its same-run baseline: bench/results/*.json, bench/RESULTS.md
	$(RUN) python -m crm_bench

bench-quick: sync infra  ## the benchmarks at small sizes (seconds each), to keep the code working
	$(RUN) python -m crm_bench --quick --results .cache/bench-quick

run: sync  ## the whole system in one process on :8000 (SQLite under .data/, in-process, .ics)
	AUTH_MODE=dev CRM_DATA_DIR=.data $(RUN) python -m crm_embedded --host 127.0.0.1 --port 8000
