"""Raw layer assets: one table per market feed, plus the exchange calendar, written per window."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_duckdb import DuckDBResource

from assets import calendars
from assets.storage import RAW_TABLES, write_window
from assets.universe import Market, instruments, markets
from pipelines.partitions import report_dates, report_window
from pipelines.resources import MarketSource


def raw_key(table: str) -> AssetKey:
    """Raw assets are keyed like the table they write: ``raw/<table>``."""
    return AssetKey(["raw", table])


def build_bars_asset(market: Market) -> AssetsDefinition:
    """The raw bars asset of one market: same code for every market, only the feed differs."""
    table = RAW_TABLES[f"{market.market}_bars"]

    @asset(
        key=raw_key(table.name),
        group_name=market.market,
        partitions_def=report_dates,
        backfill_policy=BackfillPolicy.single_run(),
        kinds={"duckdb", market.feed},
        description=f"{market.name} daily bars as the {market.feed} feed returned them.",
    )
    def _bars(
        context: AssetExecutionContext, duckdb: DuckDBResource, source: MarketSource
    ) -> MaterializeResult:
        window = report_window(context)
        start, end = window.fetch_range(source.lookback_days)
        batch = source.fetch_bars(market, instruments(market.market), start, end)
        with duckdb.get_connection() as conn:
            summary = write_window(conn, table, batch.frame, window)
        context.log.info(
            "%s: %d owned rows replaced, %d history rows added for report dates %s..%s",
            table.qualified,
            summary.replaced,
            summary.history_added,
            window.start,
            window.end,
        )
        return MaterializeResult(
            metadata={
                "rows_replaced": summary.replaced,
                "history_rows_added": summary.history_added,
                "sources": ", ".join(sorted(batch.frame["source"].unique())) or "none",
                "unavailable": MetadataValue.json(batch.unavailable),
            }
        )

    return _bars


@asset(
    key=raw_key("market_sessions"),
    group_name="calendars",
    partitions_def=report_dates,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"duckdb"},
    description="Every market's exchange sessions (UTC open and close) from exchange-calendars.",
)
def market_sessions(
    context: AssetExecutionContext, duckdb: DuckDBResource, source: MarketSource
) -> MaterializeResult:
    window = report_window(context)
    start, end = window.fetch_range(source.lookback_days)
    frames = [
        calendars.sessions(market.calendar, start, end).assign(market=market.market)
        for market in markets().values()
    ]
    frame = pd.concat(frames, ignore_index=True)
    with duckdb.get_connection() as conn:
        summary = write_window(conn, RAW_TABLES["market_sessions"], frame, window)
    return MaterializeResult(
        metadata={"sessions_written": summary.replaced + summary.history_added}
    )


bars_assets = [build_bars_asset(market) for market in markets().values()]
