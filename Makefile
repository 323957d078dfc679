# The two commands a new user runs: `make report` and `make test`.
# Each installs what it needs into a local virtualenv (.venv) first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Shared public data mirror (CI and developers); `facenb data fetch` uses it when set.
export FACENB_DATA_MIRROR ?= $(abspath ../shared/data)
# Download cache of `facenb data fetch` (git-ignored); without it facenb uses ~/.cache/facenb.
export FACENB_DATA ?= $(abspath data/cache)
# Official-output conformance cases (read in place by tests and by notebooks 11/12 when present).
export FACENB_CONFORMANCE ?= $(abspath ../shared/conformance)

.PHONY: install test report bench clean

$(STAMP): pyproject.toml setup.py facenb/_closest.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[notebooks,dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

report: $(STAMP)
	$(VENV)/bin/facenb data fetch all || true
	$(VENV)/bin/facenb report --out reports/

bench: $(STAMP)
	$(PY) tests/bench/run.py

clean:
	rm -rf $(VENV) reports
