# Every task a person or CI runs. `make test` and `make demo` set everything up on a fresh
# machine: the virtual environment comes from requirements.lock (with uv, bootstrapped with
# pip when missing) and the Debian packages the tests need are installed with apt-get.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
VEGETA_VERSION := v12.13.0
VEGETA := .tools/vegeta-$(VEGETA_VERSION)/vegeta
GO ?= go
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# Java 17 runs the Kafka broker; Maven fetches its jars once (see kafka-jars); wrk loads the API
# in `make bench-api`; prometheus brings promtool, which checks the config and alert rules,
# and the server that runs every dashboard query against the real scorer and API.
DEBIAN_PACKAGES := git openjdk-17-jre-headless maven wrk prometheus
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help install system-deps test test-unit test-integration demo lint format lock \
        bench bench-train bench-stream bench-api bench-monitor mlflow-ui kafka-jars kafka-start kafka-stop clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# Bytecode is compiled at install time: with PYTHONDONTWRITEBYTECODE set (as on CI), every
# process would otherwise recompile mlflow, xgboost and scipy from source (~9 s per import).
$(STAMP): requirements.lock pyproject.toml | $(filter .tools/bin/uv,$(UV))
	$(UV) venv --allow-existing --python 3.11 $(VENV)
	$(UV) pip sync --python $(BIN)/python --require-hashes --compile-bytecode requirements.lock
	$(UV) pip install --python $(BIN)/python --no-deps --editable .
	touch $@

install: $(STAMP) ## build .venv from requirements.lock

system-deps: ## install the Debian packages the tests need (apt-get)
	@missing=""; for pkg in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

test: install system-deps kafka-jars ## lint, unit tests, then integration tests against real services
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest tests/unit
	$(BIN)/pytest tests/integration

test-unit: install ## unit tests only (no services)
	$(BIN)/pytest tests/unit

test-integration: install system-deps kafka-jars ## integration tests only
	$(BIN)/pytest tests/integration

demo: install ## fetch the real dataset, train, evaluate, calibrate the drift baseline, register; show the results
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show
	$(BIN)/fraud models

lint: install ## ruff, ruff format --check, mypy, import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: ## re-resolve requirements.lock from pyproject.toml
	$(UV) pip compile pyproject.toml --group dev --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --quiet -o requirements.lock

bench: bench-train bench-stream bench-api bench-monitor ## every benchmark; results in reports/bench/*.json

bench-train: install ## time the full pipeline (fetch excluded) on the real dataset
	$(BIN)/python -m benchmarks.bench_train

bench-stream: install kafka-jars ## scorer drain rate, latency and the old consumer, own broker
	$(BIN)/python -m benchmarks.bench_stream

bench-api: install system-deps $(VEGETA) ## REST API: saturation (wrk), fixed rates (vegeta), batches
	$(BIN)/python -m benchmarks.bench_api --vegeta $(VEGETA)

bench-monitor: install kafka-jars ## drift alarm on every test window, plain and shifted; monitor vs scorer p99
	$(BIN)/python -m benchmarks.bench_monitor

# vegeta, the open-loop load generator of bench-api, built with Go from the module proxy into
# .tools/ (a folder per version, so changing VEGETA_VERSION builds the new one).
$(VEGETA):
	@command -v $(GO) >/dev/null || { echo "bench-api needs Go >= 1.22 to build vegeta"; exit 1; }
	GOBIN=$(CURDIR)/$(@D) GOFLAGS=-buildvcs=false $(GO) install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

mlflow-ui: install ## MLflow UI on http://127.0.0.1:5000 over the project's store
	$(BIN)/fraud mlflow

# The broker's jars: $KAFKA_HOME/libs when KAFKA_HOME is set, else resolved once with Maven from
# serving/kafka_jars/pom.xml (again only when the pom changes). `fraud kafka start` does the same.
kafka-jars: install system-deps ## fetch the Kafka broker's jars with Maven once (skipped with KAFKA_HOME)
	$(BIN)/fraud kafka jars

kafka-start: install kafka-jars ## start the local Kafka broker (FRAUD_KAFKA_BOOTSTRAP, data in .run/kafka)
	$(BIN)/fraud kafka start

kafka-stop: install ## stop the local Kafka broker (its data stays)
	$(BIN)/fraud kafka stop

clean: ## remove the virtual environment and tool caches (keeps data and the MLflow store)
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
