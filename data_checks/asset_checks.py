"""Every check of the gate as a partition-aware Dagster asset check, shown in the UI with its
severity and the offending values.

ERROR checks on raw tables are blocking: corrupt feed data stops the run before dbt. Checks on
facts (freshness, return bounds, ...) are not: one stale or unconfirmed date must not hold back
the other dates of a backfill, and the report asset's gate blocks exactly the dates they touch.
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)
from dagster_duckdb import DuckDBResource

from market_intel.checks.outcome import ERROR, MAX_LISTED, CheckOutcome
from market_intel.checks.suites import Check, all_checks
from market_intel.storage import DUCKDB_POOL
from pipelines.partitions import report_dates, report_window


def build_asset_check(check: Check) -> AssetChecksDefinition:
    @asset_check(
        asset=AssetKey(check.asset.split("/")),
        name=check.name,
        blocking=check.severity == ERROR and check.asset.startswith("raw/"),
        partitions_def=report_dates,
        pool=DUCKDB_POOL,
        description=f"{check.severity}: {check.description}",
    )
    def _check(context: AssetCheckExecutionContext, duckdb: DuckDBResource) -> AssetCheckResult:
        with duckdb.get_connection() as conn:
            outcome = check.evaluate(conn, report_window(context))
        if not outcome.passed:
            log = context.log.error if outcome.severity == ERROR else context.log.warning
            log(outcome.summary())
        return check_result(outcome)

    return _check


def check_result(outcome: CheckOutcome) -> AssetCheckResult:
    """The outcome as Dagster shows it: passed or not, its severity and the first findings."""
    severity = AssetCheckSeverity.ERROR if outcome.severity == ERROR else AssetCheckSeverity.WARN
    return AssetCheckResult(
        passed=outcome.passed,
        severity=severity,
        description=outcome.summary()[:4000],
        metadata={
            "severity": outcome.severity,
            "checks": outcome.description,
            "failures": len(outcome.findings),
            "first_failures": MetadataValue.json(
                [finding.message for finding in outcome.findings[:MAX_LISTED]]
            ),
        },
    )


gate_checks = [build_asset_check(check) for check in all_checks()]
