# One entry point for people and CI. Every target sets up what it needs itself:
# a virtualenv in .venv (pip upgraded first: the stock pip crashes on this set).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STACK  ?= dev

NPM    ?= npm

.PHONY: venv node_modules demo test plan clean

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

plan: venv
	$(PY) -m components.plan --stack $(STACK)

clean:
	rm -rf $(VENV) build .pytest_cache node_modules
