# hwprof: the two commands are `make demo` (main job) and `make test` (tests).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HWPROF := $(VENV)/bin/hwprof

.PHONY: venv demo test test-all test-deps lint clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $$(scripts/find-python310.sh) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(HWPROF) check-device cpu
	$(HWPROF) build-table --device cpu --space mbv2-cifar --out tables/cpu-mbv2-cifar.parquet
	$(HWPROF) table show tables/cpu-mbv2-cifar.parquet
	$(HWPROF) build-table --device cpu --space mbv2-mini --out tables/cpu-mbv2-mini.parquet
	# calibrates the table for the space first (once), then closes the loop: the answer is
	# measured end to end within the budget (exit 3 if no round fits)
	$(HWPROF) search --table tables/cpu-mbv2-mini.parquet --space mbv2-mini --latency-budget mid \
		--data mnist --epochs 3 --retrain-epochs 2 --calibrate-archs 4 --out runs/demo

# sshd and the torch venv (.venv-torch) that the default suite's SSH and torch-runtime
# tests need; see scripts/prepare-tests.sh
test-deps:
	scripts/prepare-tests.sh

test: venv test-deps
	$(VENV)/bin/pytest -q

test-all: venv test-deps
	$(VENV)/bin/pytest -q -m ""

lint: venv
	$(VENV)/bin/ruff check hwprof tests scripts
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .venv-torch build *.egg-info .pytest_cache .ruff_cache
