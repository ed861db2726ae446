"""The fact checks of the gate as one Dagster step: a multi-asset check that reads dbt's findings
(marts.fct_gate_findings) for the run's report dates and reports one result per check, on the
mart asset the check is on. Nothing is computed here: dbt computed the findings once, and the
report asset reads the same view's verdict.

Not blocking: one stale or unconfirmed date must not hold back the other dates of a backfill;
the report asset blocks exactly the dates the findings touch. Not partitioned: one result per
check for the run, whatever its window (the raw checks run in their raw assets' steps).
"""

from collections.abc import Iterator
from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)
from dagster_duckdb import DuckDBResource

from data_checks.results import check_result, log_outcome
from market_intel.checks.gate import FINDINGS, GateFinding, read_findings
from market_intel.checks.outcome import CheckOutcome, Finding
from market_intel.checks.suites import Check, fact_checks
from market_intel.storage import DUCKDB_POOL, ReportWindow
from pipelines.partitions import run_window

# A run without a partition (launched for the check alone) checks every report date.
EVERY_DATE = ReportWindow(date(1900, 1, 1), date(9999, 1, 1))
FINDINGS_KEY = AssetKey(FINDINGS.split("."))


def check_outcome(check: Check, findings: list[GateFinding]) -> CheckOutcome:
    """The check's findings among the window's, one per report date and message."""
    mine = [f for f in findings if (f.check_name, f.asset) == (check.name, check.asset)]
    return CheckOutcome(
        check.name,
        check.asset,
        check.severity,
        check.description,
        [Finding(f.message, f.market) for f in mine],
    )


def spec(check: Check) -> AssetCheckSpec:
    return AssetCheckSpec(
        name=check.name,
        asset=AssetKey(check.asset.split("/")),
        additional_deps=[FINDINGS_KEY],
        blocking=False,
        description=f"{check.severity}: {check.description}",
    )


@multi_asset_check(
    specs=[spec(check) for check in fact_checks()],
    name="fact_checks",
    pool=DUCKDB_POOL,
    description="The fact checks of the quality gate, read from marts.fct_gate_findings.",
)
def fact_gate_checks(
    context: AssetCheckExecutionContext, duckdb: DuckDBResource
) -> Iterator[AssetCheckResult]:
    with duckdb.get_connection() as conn:
        findings = read_findings(conn, run_window(context) or EVERY_DATE)
    for check in fact_checks():
        outcome = check_outcome(check, findings)
        log_outcome(context.log, outcome)
        yield check_result(outcome)


gate_checks = [fact_gate_checks]
