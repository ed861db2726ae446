"""The project's settings: environment variables with defaults that work offline.

Importing this module fills in every unset ``MARKET_INTEL_*`` variable and makes relative paths
absolute against the repository root, so the Dagster resources (through ``EnvVar``) and the dbt
profile (through ``env_var``) always read the same values, whatever the working directory.
"""

import os
import shutil
import sys
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DEMO_DATA_DIR = PROJECT_ROOT / "sample_data" / "demo"
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
# The dbt of this environment's dbt-core (the venv's, even when the venv is not activated), not
# another dbt that happens to be first on PATH.
_VENV_DBT = Path(sys.executable).with_name("dbt")
DBT_EXECUTABLE = str(_VENV_DBT) if _VENV_DBT.exists() else shutil.which("dbt") or "dbt"

DEFAULTS = {
    # One database for `make dev`, `make demo` and the CLI alike (docs/operations.md).
    "MARKET_INTEL_DB": "data/market_intel.duckdb",
    "MARKET_INTEL_SOURCE": "live",
    "MARKET_INTEL_REPLAY_DIR": "data/replay",
    "MARKET_INTEL_REPORTS_DIR": "reports",
    "MARKET_INTEL_CCXT_EXCHANGES": "binance,okx,kraken",
    # History before a run's sessions: the longest look-back of a fact (the volatility's 1-year
    # percentile: 272 sessions of an exchange calendar, 385 days of crypto; 250 observations of a
    # divergence) with a margin, so a report is the same whatever older history the file holds.
    "MARKET_INTEL_LOOKBACK_DAYS": "550",
    "MARKET_INTEL_REQUESTS_PER_MINUTE": "30",
    "MARKET_INTEL_PARTIAL_REPORTS": "false",
    # The first report date Dagster offers (pipelines/partitions.py): where the data starts.
    "MARKET_INTEL_FIRST_REPORT_DATE": "2015-01-01",
    # Delivery (docs/delivery.md): no URL, nothing is sent.
    "MARKET_INTEL_NOTIFY_URLS": "",
    "MARKET_INTEL_ALERT_URLS": "",
    "MARKET_INTEL_REPORTS_BASE_URL": "",
    "MARKET_INTEL_NOTIFY_FORCE": "false",
    "MARKET_INTEL_NOTIFY_BACKFILL": "latest",
    "MARKET_INTEL_NOTIFY_RETRIES": "3",
    "MARKET_INTEL_NOTIFY_RETRY_SECONDS": "5",
}
# Dagster and dbt switches every process needs, the UI's webserver and daemon included (they
# create runs without importing this module: `make dev` exports them too, Makefile).
# - One planned event per asset for a range run instead of one per report date: a one-run
#   backfill records 19 events a date instead of 38. Its cost: when such a run fails,
#   Dagster does not mark its partitions failed (they show as missing).
# - No dbt version check or anonymous usage statistics at each dbt step.
PROCESS_ENVIRONMENT = {
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
    "DBT_VERSION_CHECK": "false",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
}
PATH_SETTINGS = ("MARKET_INTEL_DB", "MARKET_INTEL_REPLAY_DIR", "MARKET_INTEL_REPORTS_DIR")


def absolute_path(value: str) -> str:
    """A path taken from the repository root when relative; MotherDuck (``md:``) paths as they are."""
    if value.startswith("md:") or value == ":memory:":
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else PROJECT_ROOT / path)


def apply_defaults() -> None:
    """Fill unset settings with their defaults and make path settings absolute."""
    for name, default in {**DEFAULTS, **PROCESS_ENVIRONMENT}.items():
        os.environ.setdefault(name, default)
    for name in PATH_SETTINGS:
        os.environ[name] = absolute_path(os.environ[name])
    database = os.environ["MARKET_INTEL_DB"]
    if not database.startswith("md:") and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def first_report_date() -> str:
    """``MARKET_INTEL_FIRST_REPORT_DATE`` (ISO), checked: a typo fails at load with its value."""
    value = os.environ["MARKET_INTEL_FIRST_REPORT_DATE"]
    try:
        date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(
            f"MARKET_INTEL_FIRST_REPORT_DATE={value!r}: expected YYYY-MM-DD"
        ) from error
    return value


apply_defaults()
