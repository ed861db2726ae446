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
    AssetKey,
    asset_check,
)
from dagster_duckdb import DuckDBResource

from assets.storage import DUCKDB_POOL
from data_checks.outcome import ERROR
from data_checks.suites import Check, all_checks
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
        return outcome.to_result()

    return _check


gate_checks = [build_asset_check(check) for check in all_checks()]
