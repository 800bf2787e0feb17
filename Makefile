# Keras Lakehouse — the two commands: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# The stamp is rebuilt when the dependency set changes.
STAMP := $(VENV)/.installed
RAW := data/01_raw

# No command waits on the network for telemetry or usage statistics.
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_TELEMETRY := false
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python
export PYTHONUNBUFFERED := 1

.PHONY: help setup sample-data run test check lint format viz bench package lock clean clean-data

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock runtime/databricks-runtime.toml
	@command -v java >/dev/null || { echo "Java 17 is required (Spark): install openjdk-17-jre." >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --python $(BIN)/python --quiet --require-hashes requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $@

setup: $(STAMP)  ## Create .venv and install the locked dependencies (skipped when up to date)

sample-data: $(STAMP)  ## Generate the sample raw data when data/01_raw is empty
	$(BIN)/python -m keras_lakehouse.sample_data --output $(RAW) --if-empty

run: sample-data  ## Set up if needed, then `kedro run` the default pipeline locally
	$(BIN)/kedro run

# The suite runs on TEST_WORKERS pytest-xdist workers; tests that share a module or an expensive
# fixture stay on one worker (tests/conftest.py). The suite keeps the cores busy (machine CPU idle
# 7 s of a 731-s run on 3 workers): one worker per core does the same work with one JVM and one
# TensorFlow fewer (2 cores: 659 s on 2 workers, 731 s on 3; tests/README.md). At most 4: the
# five longest groups bound the run beyond that. make test TEST_WORKERS=1: serial.
CORES := $(shell nproc 2>/dev/null || echo 2)
TEST_WORKERS ?= $(shell echo $$(( $(CORES) < 4 ? $(CORES) : 4 )))
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadgroup

test: setup  ## Set up if needed, then lint and run the whole test suite (ends with its 10 slowest steps)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/pytest $(PYTEST_PARALLEL) --durations=10

# The tests that need no JVM: not `slow`, and not `spark` (conftest marks every user of the
# suite's Spark session). ~50 s on 2 cores; the Spark tests and whole runs are in `make test`.
check: setup  ## The quick inner loop (~1 min): lint, then the tests that need no Spark (no coverage)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not slow and not spark" --no-cov -q

lint: setup  ## Lint and format-check only
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: setup  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

# kedro-viz runs without the project's hooks (no Spark session: --include-hooks would start one).
# It asks PyPI for its latest version at start and on /api/version, with no switch to turn that
# off: a proxy on a closed local port makes the check fail at once instead of waiting on the
# network. Extra flags: make viz VIZ_ARGS="--port 4242 --no-browser".
viz: setup  ## Open the pipeline graph (kedro viz; no Spark session, no network)
	http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
	HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
	no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost \
		$(BIN)/kedro viz run --host 127.0.0.1 $(VIZ_ARGS)

bench: setup  ## Benchmarks into benchmarks/results (BENCH=loader|scale, default both; QUICK=1: no ×32)
	$(BIN)/python benchmarks/bench.py --bench $(or $(BENCH),all)$(if $(QUICK), --quick)$(if $(REPEATS), --repeats $(REPEATS))

package: setup  ## Build the wheel, the conf tarball and the SBOM (sbom.cdx.json) into dist/
	rm -f dist/keras_lakehouse-*.whl dist/conf-keras_lakehouse.tar.gz  # one wheel: dist/*.whl
	$(BIN)/kedro package
	$(BIN)/python -m keras_lakehouse.platform.sbom --output dist/sbom.cdx.json  # CycloneDX, of .venv
	@ls -1 dist/keras_lakehouse-*.whl dist/conf-keras_lakehouse.tar.gz dist/sbom.cdx.json

lock: setup  ## Re-resolve requirements.lock against the target runtime (runtime/; needs the network)
	UV=$(BIN)/uv bash scripts/lock.sh

clean:  ## Remove the virtual environment and caches (keeps data)
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage

clean-data:  ## Remove every generated table, report and sample file under data/
	find data -mindepth 2 ! -name .gitkeep -delete
