# The two quick-start commands: `make demo` (install, distil, serve) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REGISTRY := var/registry

CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test test-fast check distill serve clean system-packages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## demo: install, distil the demo bot from data/ (skipped when nothing changed), serve it on :8000
demo: $(VENV)/.installed
	$(PY) -m distill run --train data/train.jsonl --test data/test.jsonl --templates data/templates.yml \
		--config configs/distill.yaml --registry $(REGISTRY)
	$(PY) -m bot serve --registry $(REGISTRY) --db sqlite:///var/bot.db --host 127.0.0.1 --port 8000 \
		--seed-orders data/orders.json

## system-packages: Debian's Chromium for the browser tests (Playwright drives it; no browser download), a
## Chinese font for the screenshots of the console in Chinese, and nginx for the two-replica tests and benchmark
system-packages:
	@test -x $(CHROMIUM) -a -x /usr/sbin/nginx -a -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc \
		|| (apt-get update -qq && apt-get install -y -qq chromium nginx fonts-wqy-microhei)

## test: the whole test suite: tests/unit, then tests/e2e (the real demo bot, servers, Chromium, nginx,
## PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379)
test: $(VENV)/.installed system-packages check
	$(PY) -m pytest

## check: the static checks: ruff, the import contracts between bot's layers (lint-imports) and mypy
check: $(VENV)/.installed
	$(VENV)/bin/ruff check bot distill tests
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

## test-fast: the unit tier alone (tests/unit: no real model, server or browser; under a minute)
test-fast: $(VENV)/.installed
	$(PY) -m pytest tests/unit

clean:
	rm -rf var .pytest_cache
