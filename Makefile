# Sumo Sources: `make run` sets up and runs the product; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MANAGE := $(PY) manage.py

.PHONY: run demo test test-fast lint check bench-ingest bench-syslog bench-deliver simulator chromium rsyslog clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The dependencies listed in pyproject.toml (plus the dev extra), as a requirements list.
REQS = $(PY) -c 'import sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print("\n".join(p["dependencies"] + [d for x in sys.argv[1:] for d in p["optional-dependencies"][x]]))'

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.run-deps: pyproject.toml | $(PY)
	$(REQS) > $(VENV)/requirements.txt
	$(PIP) install --quiet -r $(VENV)/requirements.txt
	touch $@

$(VENV)/.dev-deps: pyproject.toml $(VENV)/.run-deps
	$(REQS) dev > $(VENV)/requirements-dev.txt
	$(PIP) install --quiet -r $(VENV)/requirements-dev.txt
	touch $@

run: $(VENV)/.run-deps
	$(MANAGE) migrate --noinput
	$(MANAGE) createcachetable
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) bootstrap
	$(MANAGE) serve

# `make run` plus each source kind's demo (a stand-in vendor and a demo source): data within a minute.
demo: $(VENV)/.run-deps
	$(MANAGE) migrate --noinput
	$(MANAGE) createcachetable
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) bootstrap
	$(MANAGE) demo

# Debian's chromium drives the browser tests (never a downloaded browser build).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

# Debian's rsyslog (with its GnuTLS driver) is the real receiver of the Syslog destination tests;
# they start their own rsyslogd, so no service is enabled or started here.
rsyslog:
	@dpkg -s rsyslog rsyslog-gnutls >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog rsyslog-gnutls >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog rsyslog-gnutls >/dev/null; fi; }

test: $(VENV)/.dev-deps chromium rsyslog
	$(VENV)/bin/pytest

lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

check: $(VENV)/.dev-deps
	$(MANAGE) check
	$(MANAGE) makemigrations --check --dry-run

bench-ingest: $(VENV)/.dev-deps
	$(PY) bench/ingest.py

bench-syslog: $(VENV)/.dev-deps rsyslog
	$(PY) bench/deliver_syslog.py

# Delivery of 1,000,000 stored messages by the real engine to rsyslog and to an HTTP receiver:
# `make bench-deliver ARGS="--messages 100000 --only syslog"`.
bench-deliver: $(VENV)/.dev-deps rsyslog
	$(PY) bench/deliver.py $(ARGS)

# The stand-in vendor on its own (standard library only, no Django): `make simulator ARGS="--help"`.
simulator: $(PY)
	$(PY) -m sophos_simulator $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
