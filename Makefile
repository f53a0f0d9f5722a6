# One entry point for people and CI. Every target sets up what it needs itself:
# a virtualenv in .venv (pip upgraded first: the stock pip crashes on this set).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STACK  ?= dev

NPM    ?= npm

.PHONY: venv node_modules demo test lint plan preflight clean

$(VENV)/.installed: requirements.txt scoring/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# Node tools the tests use (Azurite, a local Blob endpoint), exactly as package-lock.json pins them.
node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	touch $@

node_modules: node_modules/.package-lock.json

demo: venv
	$(PY) -m scoring demo

test: venv node_modules
	$(PY) -m pytest -q

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
	rm -rf $(VENV) build .pytest_cache node_modules
