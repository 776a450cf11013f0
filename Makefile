# Two commands: `make run` brings the system up on the embedded default, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A fixed, test-only key so `manage.py check` and the suite run without local secrets.
TEST_ENV := SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} AMI_SECRETS_KEY=$${AMI_SECRETS_KEY:-dGVzdC1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q=}

# pytest workers (pytest-xdist, one test file per worker at a time): many tests wait on
# simulators, servers and the browser rather than the CPU, so two workers share two cores.
# Tests marked `serial` (they restart a shared service) run alone afterwards.
PYTEST_WORKERS ?= 2

# Every install is held to constraints.txt: the exact version of every package, run and test.
PIP_INSTALL := $(PY) -m pip install -q -c constraints.txt

.PHONY: run test lint format venv clean lock

$(VENV)/.run-installed: requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -r requirements.txt
	touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed requirements-test.txt
	$(PIP_INSTALL) -r requirements-test.txt
	touch $@

venv: $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(PY) -m amisite.launcher

test: $(VENV)/.test-installed
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) .ci/audit.py
	$(TEST_ENV) $(PY) manage.py check --fail-level WARNING
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not serial" --durations=25 $(PYTEST_ARGS)
	$(TEST_ENV) $(PY) -m pytest -m serial $(PYTEST_ARGS) || [ $$? = 5 ]

lint:
	$(PY) -m ruff format --check . && $(PY) -m ruff check . && $(VENV)/bin/lint-imports

format:
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

# Regenerate constraints.txt from requirements*.txt in a throwaway venv (UPGRADE=1: all afresh).
lock:
	$(PYTHON) tools/lock.py $(if $(UPGRADE),--upgrade)

clean:
	rm -rf var .pytest_cache
