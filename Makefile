# market-intel: every command a person, CI and the benchmarks use.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
DEMO_DATE ?= 2026-03-22
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# Every Dagster process of `make dev` (webserver, daemon, code server) plans a range run with one
# event per asset, not one per report date; market_intel/settings.py sets the same for processes
# that load the definitions (PROCESS_ENVIRONMENT, docs/operations.md).
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS ?= true
# The venv's dbt, dagster and python first, activated or not: dagster-dbt runs `dbt` from PATH
# when `dagster dev` prepares the dbt project.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install manifest demo test dev lint validate clean backfill bench doctor

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Reinstalled only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The dbt manifest Dagster loads the dbt assets from.
manifest: install
	cd dbt_project && ../$(BIN)/dbt parse --quiet

# The demo data into the project's database (MARKET_INTEL_DB, default data/market_intel.duckdb),
# the one `make dev` shows: re-run its dates from the UI with MARKET_INTEL_SOURCE=demo make dev.
demo: manifest
	MARKET_INTEL_SOURCE=demo \
		$(BIN)/dagster asset materialize -m pipelines.definitions --select '*' --partition $(DEMO_DATE)
	@echo "Report published: $${MARKET_INTEL_REPORTS_DIR:-reports}/$(DEMO_DATE).md (.html and .json beside it)"

# Before a live run: can this machine reach every live source? A table per feed and source;
# exits 1 when a primary source is down (docs/operations.md, "Doctor and fail-fast").
doctor: install
	$(BIN)/python -m market_intel.feeds.doctor

# The whole suite (pytest-xdist; tests/conftest.py groups the modules that share runs on one
# worker). Three workers on this 2-core machine: the pipeline tests wait much of their time on
# subprocesses, servers and the DuckDB file's lock; 11 min 42 s against 16 min 4 s with two
# (2026-12-01, README). PYTEST_ARGS adds options, e.g. PYTEST_ARGS="-m 'not slow'".
PYTEST_WORKERS ?= 3
test: manifest
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

dev: manifest
	$(BIN)/dagster dev -w workspace.yaml

validate: manifest
	$(BIN)/dagster definitions validate -w workspace.yaml

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf data reports dbt_project/target dbt_project/logs

# One run over the report dates START..END inclusive, the same run as the UI's range backfill
# (docs/operations.md). MARKET_INTEL_* settings come from the environment, e.g.
#   MARKET_INTEL_SOURCE=replay make backfill START=2016-01-01 END=2025-12-31
# Slots of the DuckDB pool held by a run whose process died are freed first.
backfill: manifest
	@if [ -z "$(START)" ] || [ -z "$(END)" ]; then \
		echo "usage: make backfill START=YYYY-MM-DD END=YYYY-MM-DD" >&2; exit 2; fi
	$(BIN)/python -m pipelines.sensors release-dead-slots
	@echo "Report dates $(START)..$(END) in one run; the report step logs its progress."
	$(BIN)/dagster asset materialize -m pipelines.definitions --select '*' \
		--partition-range $(START)...$(END)

# Benchmarks over generated replay data (docs/benchmarks.md); not part of `make test`.
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--only one-date,backfill-1y".
bench: manifest
	$(BIN)/python -m bench.run $(BENCH_ARGS)
