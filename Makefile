# The whole product on one machine (`make run`) and the whole suite against real services (`make test`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint services venv bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-venv; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

# Embedded defaults: SQLite under var/, no Redis, no broker server. DEBUG is on because this is a
# local demo; production sets DATABASE_URL, REDIS_URL, SECRET_KEY and leaves DEBUG off.
run: $(STAMP)
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py seed_demo
	DEBUG=1 HOST=$(HOST) PORT=$(PORT) scripts/run-all.sh

services:
	scripts/ensure-services.sh

test: $(STAMP) services
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP) services
	$(PY) bench/run_all.py

clean:
	rm -rf var .pytest_cache
