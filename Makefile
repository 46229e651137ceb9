# Two set-up commands on a fresh clone: `make run` and `make test` (see README).
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install run test bench demo clean-var

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "python3.11 not found"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip<26" "setuptools<81" wheel
	$(BIN)/pip install -q -e ".[test]"
	@touch $(STAMP)

run: install
	$(BIN)/qinglian run

test: install
	$(BIN)/python -m pytest -q

# make bench SUITE=kernel (one suite) or SUITE=kernel.reload_10k (one figure); default: all
bench: install
	$(BIN)/python -m bench $(SUITE)

demo: install
	$(BIN)/qinglian demo

clean-var:
	rm -rf var
