# twinlayer — every entry point a data engineer or CI needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
JARS_STAMP := build/jars/.stamp
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install jars packages deps up down status logs demo lint format test test-unit bench clean clean-state freeze

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Python environment (.venv): requirements.txt, the dev extra, constraints.txt
$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q -e '.[dev]' -c constraints.txt
	@touch $@

jars: $(JARS_STAMP) ## Kafka, HBase, the Spark Kafka connector and the JMX exporter from Maven Central
$(JARS_STAMP): jvm/pom.xml $(wildcard jvm/*/pom.xml)
	rm -rf build/jars
	mvn -B -q -f jvm/pom.xml package
	@touch $@

packages: ## Debian packages: Prometheus, Alertmanager, Pushgateway, PostgreSQL, JDK, Maven (apt-get when missing)
	@bash scripts/ensure-packages.sh

deps: packages install jars ## everything the stack and the tests need

up: deps ## start the embedded stack; returns when every service answers
	$(BIN)/twinlayer stack up

down: ## stop the embedded stack (no process left behind)
	@if [ -x $(BIN)/twinlayer ]; then $(BIN)/twinlayer stack down; fi

status: ## each service: up or down, and why
	@$(BIN)/twinlayer stack status

logs: ## the last lines of every service's log (state/logs/)
	@$(BIN)/twinlayer stack logs

demo: deps ## stack up, sample events through the system, URLs printed
	$(BIN)/twinlayer demo

lint: install ## ruff (lint rules, formatting), mypy (strict on model/ and storage/) and a secret scan; no file changed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	git ls-files -z | xargs -0 $(BIN)/detect-secrets-hook

format: install ## ruff: apply the safe fixes and the formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: deps ## the whole suite on the real stack (started if not already healthy, stopped after)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: deps ## pure-logic tests only (local Spark included), no services; installs what they need
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: up ## speed-layer figures and serving's range queries on the running stack (JSON lines in state/bench/); about 15 minutes
	$(BIN)/python benchmarks/speed_layer.py all
	$(BIN)/python benchmarks/batch_and_serving.py queries

freeze: ## rewrite constraints.txt from the current environment
	$(BIN)/pip freeze --exclude-editable | grep -v '^twinlayer' > constraints.txt

clean-state: down ## forget all data and logs of the embedded stack
	rm -rf state

clean: clean-state ## also remove fetched jars and the Python environment
	rm -rf build $(VENV)
