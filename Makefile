# One entry point for people and CI. Every target sets up what it needs itself: a virtualenv
# in .venv with the platform set (pip upgraded first: the stock pip crashes on this set), or,
# for the demo alone, a lean one in .venv-demo with the scoring runtime and matplotlib.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEMO_VENV := .venv-demo
STACK  ?= dev

NPM    ?= npm

# Every command of `batchscore` and every option, written from the parsers themselves (the same
# text as README's "Every option"; `python -m batchscore.command_reference --write README.md`
# refreshes README after a flag changes).
help: venv
	@$(PY) -m batchscore.command_reference

.PHONY: help venv node_modules demo test lint plan preflight clean

# The package itself goes in editable (pip install -e .): the `batchscore` command, and
# `python -m batchscore`, work from any folder and always run this checkout's code.
$(VENV)/.installed: requirements.txt requirements-demo.txt scoring/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $@

venv: $(VENV)/.installed

# Node tools the tests use (Azurite, a local Blob endpoint; Kusto.Language, Microsoft's KQL
# parser, for the alert and workbook queries), exactly as package-lock.json pins them
# (Azurite 3.35.0: its whole tree runs on Node 20.6 or later; 3.36 and up ask for Node 21/22).
node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	touch $@

node_modules: node_modules/.package-lock.json

# The demo needs only the scoring runtime (requirements-demo.txt): installed with pip's own
# progress, so the first run shows what it is doing.
$(DEMO_VENV)/.installed: requirements-demo.txt scoring/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install -r requirements-demo.txt -e .
	touch $@

demo: $(DEMO_VENV)/.installed
	$(DEMO_VENV)/bin/batchscore demo

# Without npm the tests still run; the Azurite ones skip, saying how to get them. CI installs
# node_modules first (.ci/run), and there a missing Azurite fails the tests instead.
# The suite runs on TEST_WORKERS processes (pytest-xdist): in one process it kept one of a
# 2-core machine's cores busy. --dist loadscope hands each worker whole test modules, so a
# module's fixtures (a fresh virtualenv, the mistake walk's 88 commands) are built once, not
# once per worker. 2, not auto: auto counts the host's physical cores (psutil), not the CPUs
# a container may use, and 3 on 2 cores was no faster (docs/performance.md). TEST_WORKERS=0
# runs the suite in one process; a plain `pytest` (one file, a debugger) runs in one too.
TEST_WORKERS ?= 2
test: venv
	@if command -v $(NPM) >/dev/null 2>&1; then $(MAKE) --no-print-directory node_modules; \
	else echo "npm not found: the Azurite tests will skip (install Node.js 20.6+ with npm to run them)"; fi
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope

# Linters, all pinned in requirements.txt: ruff (lint and format), hadolint on the scoring
# image's Dockerfile, actionlint on the workflows (with shellcheck on their `run:` scripts).
# CI runs this before `make test` (.ci/run); `make test` does not depend on it, so a
# formatting nit never blocks running the tests locally.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@if [ -f docker/Dockerfile ]; then \
		echo "$(VENV)/bin/hadolint docker/Dockerfile"; $(VENV)/bin/hadolint docker/Dockerfile; \
	else echo "hadolint: no docker/Dockerfile, skipped"; fi
	$(VENV)/bin/actionlint -shellcheck $(VENV)/bin/shellcheck

# Offline, under Pulumi mocks: the resource tree, build/plan-$(STACK).json and the T-SQL the
# deployment runs in the database, build/post-deploy-$(STACK).sql.
plan: venv
	$(PY) -m components.offline.plan --stack $(STACK)

# Before `pulumi up`, with the deployer's Azure login: what would stop the deployment, each
# with its fix (exit 0 all passed, 1 something to fix, 2 bad usage).
preflight: venv
	$(PY) -m batchscore preflight --stack $(STACK)

clean:
	rm -rf $(VENV) $(DEMO_VENV) build .pytest_cache node_modules
