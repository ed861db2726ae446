# market-intel: every command a person, CI and the benchmarks use.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
DEMO_DATE ?= 2026-03-22
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install manifest demo test dev lint validate clean

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

demo: manifest
	MARKET_INTEL_SOURCE=demo MARKET_INTEL_DB=$${MARKET_INTEL_DB:-data/demo.duckdb} \
		$(BIN)/dagster asset materialize -m pipelines.definitions --select '*' --partition $(DEMO_DATE)
	@echo "Report published: $${MARKET_INTEL_REPORTS_DIR:-reports}/$(DEMO_DATE).md (.json beside it)"

test: manifest
	$(BIN)/pytest

dev: manifest
	$(BIN)/dagster dev -w workspace.yaml

validate: manifest
	$(BIN)/dagster definitions validate -w workspace.yaml

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf data reports dbt_project/target dbt_project/logs
