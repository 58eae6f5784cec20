# The whole product on one machine (`make run`) and the whole suite against real services (`make test`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Links in feeds, alerts and the Statuspage JSON name the address the site is served on.
SITE_URL ?= http://$(HOST):$(PORT)
# The AI-provider simulator; the seeded demo models point at it.
SIMULATOR_PORT ?= 8900
SIMULATOR_URL ?= http://127.0.0.1:$(SIMULATOR_PORT)

.PHONY: run test lint services venv bench bench-tools clean messages browser replica-tools chaos

# Debian packages the suite needs beyond Python: gettext (compiled translations) and Chromium
# (browser tests; Playwright drives Debian's build, it never downloads one).
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-venv; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

messages: $(STAMP)
	@command -v msgfmt >/dev/null || { apt-get update -qq && $(APT_INSTALL) gettext >/dev/null; }
	DEBUG=1 $(PY) manage.py compilemessages --ignore=.venv --ignore=var -v 0

# Noto CJK so that Korean and Japanese pages render (and screenshots of them are legible).
browser:
	@test -x /usr/bin/chromium && fc-list 2>/dev/null | grep -qi "noto sans cjk" || \
		{ apt-get update -qq && $(APT_INSTALL) chromium fonts-noto-cjk >/dev/null; }

# Embedded defaults: SQLite under var/, no Redis, no broker server, DEBUG off (debug pages need an
# explicit DEBUG=1). var/.env holds a SECRET_KEY and a key for secrets at rest (FIELD_ENCRYPTION_KEYS,
# a Fernet key: 32 random bytes, url-safe base64) generated once, and ALLOW_SQLITE=1; the settings
# read it, so every manage.py command works as written afterwards.
var/.env:
	@mkdir -p var
	@umask 077 && $(PYTHON) -c "import base64, os, secrets; print('SECRET_KEY=' + secrets.token_urlsafe(50)); print('FIELD_ENCRYPTION_KEYS=' + base64.urlsafe_b64encode(os.urandom(32)).decode()); print('ALLOW_SQLITE=1')" > $@
	@echo "Wrote $@ (a generated SECRET_KEY and FIELD_ENCRYPTION_KEYS, ALLOW_SQLITE=1)"

run: $(STAMP) messages var/.env
	@HOST=$(HOST) PORT=$(PORT) SIMULATOR_PORT=$(SIMULATOR_PORT) $(PY) scripts/ports.py
	$(PY) manage.py migrate --noinput
	SIMULATOR_URL=$(SIMULATOR_URL) $(PY) manage.py seed_demo --history-hours 6
	HOST=$(HOST) PORT=$(PORT) SITE_URL=$(SITE_URL) SIMULATOR_PORT=$(SIMULATOR_PORT) scripts/run-all.sh

services:
	scripts/ensure-services.sh

# The read-replica tests start their own PostgreSQL 15 primary and streaming replicas (initdb,
# pg_ctl, pg_basebackup) and put load on them with hey.
replica-tools:
	@test -x /usr/lib/postgresql/15/bin/pg_basebackup && command -v hey >/dev/null || \
		{ apt-get update -qq && $(APT_INSTALL) postgresql-15 hey >/dev/null; }

test: $(STAMP) services messages browser replica-tools
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# hey and wrk (HTTP load on loopback) for bench/page_throughput.py and friends.
bench-tools:
	@command -v hey >/dev/null && command -v wrk >/dev/null || \
		{ apt-get update -qq && $(APT_INSTALL) hey wrk >/dev/null; }

bench: $(STAMP) services bench-tools replica-tools
	$(PY) bench/run_all.py

# The chaos suite: the whole product on its own PostgreSQL and Redis (free ports, a temporary folder),
# every fault scenario under load, measured against the simulator's ground truth; writes its table into
# README.md. CHAOS_ARGS="--scenarios redis_kill,beat_down --models 100" runs a part.
CHAOS_ARGS ?=
chaos: $(STAMP) messages replica-tools
	$(PY) -m chaos.run --readme $(CHAOS_ARGS)

clean:
	rm -rf var .pytest_cache
