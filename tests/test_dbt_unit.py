"""The dbt unit tests (dbt_project/models/marts/unit_tests.yml): the date rule, the session logic,
the chain status and the z-scores, on hand-made rows. The pipeline's ``dbt build`` leaves them
out (they are enabled by the dbt var ``unit_tests``: about 1.5 s on every run otherwise); this
runs them against a throwaway DuckDB that holds the models' parents, built empty."""

import json
import os
import subprocess
from pathlib import Path

import duckdb

from market_intel.settings import DBT_EXECUTABLE, DBT_PROJECT_DIR
from market_intel.storage import ensure_raw_schema

UNIT_TESTS = {
    "report_snapshot_shows_the_latest_session_on_or_before_r_minus_1",
    "market_sessions_past_the_published_calendar_follow_the_bars",
    "transmission_chain_status_per_report_date",
    "divergence_zscore_against_the_previous_observations",
    "report_feed_days_show_the_latest_day_on_or_before_r_minus_1",
    "instrument_context_windows_are_calendar_based_and_look_back_only",
    "next_session_lead_when_the_lead_closed_after_the_followers",
    "divergence_evidence_and_base_rate_over_the_same_population",
    "signal_record_counts_signals_whose_follow_up_ended_before_the_report",
}
ENABLED = ["--vars", "{unit_tests: true}"]


def dbt(target: Path, database: Path, *arguments: str) -> subprocess.CompletedProcess:
    """dbt in the project, writing to ``database``, its parse and results in ``target``."""
    folders = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    folders += ["--target-path", str(target), "--log-path", str(target)]
    return subprocess.run(
        [DBT_EXECUTABLE, *arguments, *folders, *ENABLED],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "MARKET_INTEL_DB": str(database)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dbt_unit_tests_pass_and_stay_out_of_the_pipeline_build(tmp_path: Path) -> None:
    """Every unit test of the project runs and passes; the manifest the pipeline's dbt assets
    load (parsed without the var) holds none of them."""
    database, target = tmp_path / "unit.duckdb", tmp_path / "target"
    with duckdb.connect(str(database)) as conn:
        ensure_raw_schema(conn)
    parents = dbt(target, database, "build", "--empty", "--resource-type", "seed", "model")
    assert parents.returncode == 0, parents.stdout[-4000:]

    tests = dbt(target, database, "test", "--select", "test_type:unit")
    assert tests.returncode == 0, tests.stdout[-4000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    statuses = {row["unique_id"].rsplit(".", 1)[-1]: row["status"] for row in results}
    assert statuses == dict.fromkeys(UNIT_TESTS, "pass")

    # The manifest the pipeline loads (`make manifest`, no var): the unit tests are disabled.
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    assert manifest["unit_tests"] == {}
    disabled = {entry["name"] for entries in manifest["disabled"].values() for entry in entries}
    assert disabled >= UNIT_TESTS
