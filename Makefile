# The two commands of the README: `make run` (the whole search on the embedded default slice)
# and `make test`. Both create the virtual environment and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
WORKDIR ?= alps-output

.PHONY: install run test test-all lint imports types bench constraints clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/alps run --workdir $(WORKDIR)

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ""

lint: $(STAMP) imports types
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the one-way house: layer contracts of pyproject.toml [tool.importlinter]
imports: $(STAMP)
	$(BIN)/lint-imports

# mypy with zero errors (configuration in pyproject.toml [tool.mypy])
types: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python -P $$script --quick || exit 1; done

constraints: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(WORKDIR) .pytest_cache .ruff_cache .mypy_cache
