"""The suites as partition-aware, blocking Dagster asset checks (shown in the UI with metadata)."""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetChecksDefinition, asset_check
from dagster_duckdb import DuckDBResource

from assets.raw import raw_key
from assets.universe import Market, markets
from data_checks.suites import check_bars
from pipelines.partitions import report_dates, report_window


def build_bars_check(market: Market) -> AssetChecksDefinition:
    """The bars suite on one market's raw table; an ERROR stops everything downstream of it."""

    @asset_check(
        asset=raw_key(f"{market.market}_bars"),
        name="bars_suite",
        blocking=True,
        partitions_def=report_dates,
        description="GX suite: known instruments, unique sessions, non-null positive closes.",
    )
    def _check(context: AssetCheckExecutionContext, duckdb: DuckDBResource) -> AssetCheckResult:
        with duckdb.get_connection() as conn:
            outcome = check_bars(conn, market.market, report_window(context))
        if not outcome.passed:
            context.log.error(outcome.summary())
        return outcome.to_result()

    return _check


bars_checks = [build_bars_check(market) for market in markets().values()]
