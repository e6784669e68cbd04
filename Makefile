# Every task a person or CI runs. `make test` and `make demo` set everything up on a fresh
# machine: the virtual environment comes from requirements.lock (with uv, bootstrapped with
# pip when missing) and the Debian packages the tests need are installed with apt-get.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
VEGETA_VERSION := v12.13.0
VEGETA := .tools/vegeta-$(VEGETA_VERSION)/vegeta
COMPOSECHECK := .tools/composecheck/composecheck
GO ?= go
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# Java 17 runs the Kafka broker; Maven fetches its jars once (see kafka-jars); wrk loads the API
# in `make bench-api`; prometheus brings promtool, which checks the config and alert rules,
# and the server of `fraud up` and of the dashboard tests; chromium is the browser the UI tests
# drive with Playwright; nodejs brings npm, which fetches the chart library of `dvc plots show`.
DEBIAN_PACKAGES := git openjdk-17-jre-headless maven wrk prometheus chromium nodejs
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help install system-deps test test-unit test-integration demo lint format lock \
        bench bench-train bench-stream bench-api bench-monitor bench-live mlflow-ui kafka-jars kafka-start kafka-stop clean

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

install: $(STAMP) dvc-plots-offline ## build .venv from requirements.lock

system-deps: ## install the Debian packages the tests need (apt-get)
	@missing=""; for pkg in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

test: install system-deps kafka-jars $(COMPOSECHECK) ## lint, unit tests, then integration tests against real services
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest tests/unit
	$(BIN)/pytest tests/integration

test-unit: install ## unit tests only (no services)
	$(BIN)/pytest tests/unit

test-integration: install system-deps kafka-jars $(COMPOSECHECK) ## integration tests only
	$(BIN)/pytest tests/integration

# The main job end to end: the pipeline (DVC skips what is up to date), the first version into
# production when none is, the local stack (`fraud up`; a running one is reused), then the test
# split through Kafka with a summary of what the scorer did and the monitor's drift verdict.
demo: install system-deps kafka-jars ## train and register, start the stack, score the test split through Kafka
	$(BIN)/dvc repro
	$(BIN)/fraud promote --if-unset
	$(BIN)/fraud up
	$(BIN)/fraud replay --summary
	$(BIN)/fraud status

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

bench: bench-train bench-stream bench-api bench-monitor bench-live ## every benchmark; results in reports/bench/*.json

bench-train: install ## time the full pipeline (fetch excluded) on the real dataset
	$(BIN)/python -m benchmarks.bench_train

bench-stream: install kafka-jars ## scorer drain rate, latency and the old consumer, own broker
	$(BIN)/python -m benchmarks.bench_stream $(BENCH_ARGS)

bench-api: install system-deps $(VEGETA) ## REST API: saturation (wrk), fixed rates (vegeta), batches
	$(BIN)/python -m benchmarks.bench_api --vegeta $(VEGETA)

bench-monitor: install kafka-jars ## drift alarm on every test window, plain and shifted; monitor vs scorer p99
	$(BIN)/python -m benchmarks.bench_monitor

bench-live: install ## the label join's memory over 1,000,000 predictions whose labels never come
	$(BIN)/python -m benchmarks.bench_live

# vegeta, the open-loop load generator of bench-api, built with Go from the module proxy into
# .tools/ (a folder per version, so changing VEGETA_VERSION builds the new one).
$(VEGETA):
	@command -v $(GO) >/dev/null || { echo "bench-api needs Go >= 1.22 to build vegeta"; exit 1; }
	GOBIN=$(CURDIR)/$(@D) GOFLAGS=-buildvcs=false $(GO) install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

# The compose file's checker (tests/compose/composecheck): compose-go, the loader of Docker Compose
# itself, built with Go from the module proxy, so the tests validate docker-compose.yml without a
# Docker engine. Rebuilt when its source or its pinned modules change.
$(COMPOSECHECK): $(wildcard tests/compose/composecheck/*.go) tests/compose/composecheck/go.mod tests/compose/composecheck/go.sum
	@command -v $(GO) >/dev/null || { echo "the compose tests need Go >= 1.24 to build $@"; exit 1; }
	cd tests/compose/composecheck && GOFLAGS=-buildvcs=false $(GO) build -o $(CURDIR)/$@ .

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

# `dvc plots show` offline. DVC's page (dvc_plots/index.html) loads vega, vega-lite and
# vega-embed from a CDN, and stays blank without a network. This packs the three from npm (pinned
# versions, checked against the sha256 below), inlines their builds into a page template with
# DVC's `{plot_divs}` placeholder, and points this checkout at it (`plots.html_template` in
# .dvc/config.local, which git ignores): the page then renders offline wherever it is written.
# Without npm it says so and DVC keeps its default page.
VEGA_PACKAGES := vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0
VEGA_SHA256 := \
  1b8504b6731c5311be3269c4d84ca996a5cc293bc772283293ede20c490e16c3 vega-5.33.1.tgz \
  e4cbfdd8f6f1abe381c59cd558fd6a559c12b1496bfdf2e0c3295263a40fe4da vega-lite-5.23.0.tgz \
  ecf1ee709c2bac9e0a4ead6908114b05b62c71493e10a8a4308109bb070f8eb1 vega-embed-6.29.0.tgz
DVC_PLOTS_TEMPLATE := .tools/dvc-plots/$(subst @,-,$(subst $() ,+,$(VEGA_PACKAGES))).html

.PHONY: dvc-plots-offline
dvc-plots-offline: $(DVC_PLOTS_TEMPLATE) ## make `dvc plots show` render offline (vega from npm, inlined)
	@if [ -f $(DVC_PLOTS_TEMPLATE) ] && ! grep -qsF '$(DVC_PLOTS_TEMPLATE)' .dvc/config.local; then \
	  $(BIN)/dvc config --local plots.html_template ../$(DVC_PLOTS_TEMPLATE); fi

$(DVC_PLOTS_TEMPLATE): | $(STAMP)
	@if ! command -v npm >/dev/null; then \
	  echo "npm not found: dvc plots show keeps loading vega from the internet (install npm, then make dvc-plots-offline)"; \
	  exit 0; \
	fi; \
	set -euo pipefail; \
	packages=$(@D)/packages; rm -rf $$packages; mkdir -p $$packages; \
	(cd $$packages && npm pack --silent $(VEGA_PACKAGES) >/dev/null && printf '%s  %s\n' $(VEGA_SHA256) | sha256sum --check --quiet); \
	{ printf '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n{refresh_tag}\n<title>DVC plots</title>\n'; \
	  for name in vega vega-lite vega-embed; do \
	    tar -xzOf $$packages/$$name-[0-9]*.tgz package/build/$$name.min.js > $$packages/$$name.min.js; \
	    if grep -qi '</script' $$packages/$$name.min.js; then echo "$$name.min.js cannot be inlined" >&2; exit 1; fi; \
	    printf '<script>\n'; sed '/^\/\/# sourceMappingURL=/d' $$packages/$$name.min.js; printf '\n</script>\n'; \
	  done; \
	  printf '<style>table { border-spacing: 15px; }</style>\n</head>\n<body>\n{plot_divs}\n</body>\n</html>\n'; \
	} > $@.tmp; \
	mv $@.tmp $@; \
	echo "built $@ (vega, vega-lite, vega-embed inlined)"

clean: ## remove the virtual environment and tool caches (keeps data and the MLflow store)
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
