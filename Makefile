# Two commands: `make run` brings the system up on the embedded default, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A fixed, test-only key so `manage.py check` and the suite run without local secrets.
TEST_ENV := SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} AMI_SECRETS_KEY=$${AMI_SECRETS_KEY:-dGVzdC1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q=}

.PHONY: run test lint format venv clean

$(VENV)/.run-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

venv: $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(PY) -m amisite.launcher

test: $(VENV)/.test-installed
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(TEST_ENV) $(PY) manage.py check --fail-level WARNING
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint:
	$(PY) -m ruff format --check . && $(PY) -m ruff check .

format:
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

clean:
	rm -rf var .pytest_cache
