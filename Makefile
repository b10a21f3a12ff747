PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat test bench tools sandbox docs clean venv

# (Re)create the virtualenv when it is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

chat: $(STAMP)
	$(BIN)/admonster chat

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py --markdown docs/benchmarks.md

tools: $(STAMP)
	$(BIN)/admonster tools --format openai

sandbox: $(STAMP)
	$(BIN)/admonster sandbox --port 8765

docs: $(STAMP)
	$(BIN)/python -m fi_facebook --op-table > docs/ops.md

clean:
	rm -rf $(VENV) .pytest_cache .admonster
