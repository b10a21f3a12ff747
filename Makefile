PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat test lint fmt bench tools sandbox docs clean venv chromium faketime postgresql

# (Re)create the virtualenv when it is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

chat: $(STAMP)
	$(BIN)/admonster chat

# The browser test drives Debian's Chromium (never a downloaded browser); install it when the machine lacks it.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Tests must pass on any date; faketime runs them on another: faketime '2027-02-28 23:59:30' .venv/bin/python -m pytest
faketime:
	@command -v faketime >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null)

# The store's tests also run on a throwaway PostgreSQL server that the tests start themselves (tests/pgserver.py) from
# Debian's postgresql package; install it when the machine lacks initdb/pg_ctl. Debian keeps them off PATH, in
# /usr/lib/postgresql/<version>/bin. Only the tests need it: `make chat` stays on SQLite.
POSTGRES_LIB ?= /usr/lib/postgresql
postgresql:
	@command -v initdb >/dev/null || ls $(POSTGRES_LIB)/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

# Lint and types first (seconds, not minutes): ruff's rules, ruff's format, mypy (settings in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Fix what can be fixed mechanically: ruff's safe fixes, then the formatter. Whatever `make lint` still reports is
# for a person (docs/contributing.md, "Lint and types").
fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) lint chromium faketime postgresql
	$(BIN)/python -m pytest

bench: $(STAMP) postgresql
	$(BIN)/python bench/run.py --markdown docs/benchmarks.md

tools: $(STAMP)
	$(BIN)/admonster tools --format openai

sandbox: $(STAMP)
	$(BIN)/admonster sandbox --port 8765

docs: $(STAMP)
	$(BIN)/python -m fi_facebook --op-table > docs/ops.md
	$(BIN)/python -m fb_sandbox.rules > docs/fidelity.md

clean:
	rm -rf $(VENV) .pytest_cache .admonster
