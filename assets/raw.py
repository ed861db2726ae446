"""Raw layer assets: one table per feed, written per window of report dates.

Every raw asset is the same code, ``build_raw_asset``, around a different fetch: the feeds differ
only in what they call. A window writes the sessions it owns and fills in missing history
(``market_intel.storage.write_window``), in one transaction. Then the same step runs the asset's
own raw checks (``check_specs``) over what is stored, saves their findings to
``quality.raw_findings`` for dbt's gate, and reports one check result each: an ERROR check is
blocking, so corrupt feed data stops the run before dbt.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import duckdb
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_duckdb import DuckDBResource

from data_checks.results import check_result, log_outcome
from market_intel import calendars
from market_intel.checks.findings import replace_findings
from market_intel.checks.outcome import ERROR
from market_intel.checks.suites import raw_checks
from market_intel.feeds import FeedError
from market_intel.sources import FeedBatch, RawSource
from market_intel.storage import (
    DUCKDB_POOL,
    RAW_TABLES,
    ReportWindow,
    empty_frame,
    ensure_raw_schema,
    write_window,
)
from market_intel.universe import Market, instruments, markets
from pipelines.partitions import report_dates, report_window
from pipelines.resources import MarketSource

Fetch = Callable[[RawSource, date, date], FeedBatch]
T = TypeVar("T")


def raw_key(table: str) -> AssetKey:
    """Raw assets are keyed like the table they write: ``raw/<table>``."""
    return AssetKey(["raw", table])


def raw_check_specs(key: AssetKey) -> list[AssetCheckSpec]:
    """The asset's own raw checks, labelled with their severity; ERROR ones are blocking. No
    partitions of their own: a run evaluates each once, over its whole window."""
    return [
        AssetCheckSpec(
            check.name,
            asset=key,
            blocking=check.severity == ERROR,
            description=f"{check.severity}: {check.description}",
        )
        for check in raw_checks(key.to_user_string())
    ]


def run_raw_checks(
    context: AssetExecutionContext,
    conn: duckdb.DuckDBPyConnection,
    key: AssetKey,
    window: ReportWindow,
) -> list[AssetCheckResult]:
    """Evaluate the asset's raw checks over what is stored for the window (also after a failed
    fetch), store their findings for the gate and log the failures."""
    results = []
    for check in raw_checks(key.to_user_string()):
        outcome = check.evaluate(conn, window)
        replace_findings(conn, outcome, window)
        log_outcome(context.log, outcome)
        results.append(check_result(outcome))
    return results


SOURCE_HEALTH = raw_key("source_health")
SOURCE_HEALTH_COLUMNS = (
    "probed_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL, host VARCHAR NOT NULL, "
    "port INTEGER NOT NULL, reachable BOOLEAN NOT NULL, latency_ms DOUBLE, "
    "answer VARCHAR NOT NULL, feeds VARCHAR NOT NULL"
)


@asset(
    key=SOURCE_HEALTH,
    group_name="sources",
    # No partitions: one probe per run, whatever its report dates.
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    description="Live mode: one cheap request to every host of every feed, before any feed "
    "fetches; appended to raw.source_health. With every source unreachable the run fails here "
    "within seconds, one line per source, and nothing is written. Replay and demo: skipped.",
)
def source_health(
    context: AssetExecutionContext, duckdb: DuckDBResource, source: MarketSource
) -> MaterializeResult:
    feeds = source.client()
    if not feeds.is_live:
        return MaterializeResult(metadata={"probe": f"skipped: {source.mode} reads files"})
    health = feeds.source_health(context.run_id)
    if health.all_down:
        raise Failure(description=health.outage_report(), allow_retries=False)
    rows = pd.DataFrame(health.rows()).assign(probed_at=datetime.now(UTC).replace(tzinfo=None))
    with duckdb.get_connection() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
        conn.execute(f"CREATE TABLE IF NOT EXISTS raw.source_health ({SOURCE_HEALTH_COLUMNS})")
        conn.register("probe_rows", rows)
        conn.execute("INSERT INTO raw.source_health BY NAME SELECT * FROM probe_rows")
        conn.unregister("probe_rows")
    down = [health.unreachable_cause(feed.table) for feed in health.feeds]
    for cause in filter(None, down):
        context.log.error("%s", cause)
    return MaterializeResult(
        metadata={
            "probe_seconds": round(health.seconds, 2),
            "hosts": MetadataValue.md(rows.drop(columns="probed_at").to_markdown(index=False)),
            "feeds_down": MetadataValue.json([cause for cause in down if cause]),
        }
    )


def build_raw_asset(
    table_name: str, group: str, kinds: set[str], description: str, fetch: Fetch
) -> AssetsDefinition:
    """A partitioned raw asset: fetch the window's range, write it, report what was missing."""
    table = RAW_TABLES[table_name]
    key = raw_key(table.name)

    @asset(
        key=key,
        group_name=group,
        partitions_def=report_dates,
        backfill_policy=BackfillPolicy.single_run(),
        kinds={"duckdb", *kinds},
        pool=DUCKDB_POOL,
        description=description,
        deps=[SOURCE_HEALTH],
        check_specs=raw_check_specs(key),
    )
    def _raw(
        context: AssetExecutionContext, duckdb: DuckDBResource, source: MarketSource
    ) -> MaterializeResult:
        window = report_window(context)
        feeds = source.client()
        start, end = window.fetch_range(feeds.lookback_days)
        batch, failure = fetch_or_failure(
            context, feeds, table.name, lambda: fetch(feeds, start, end)
        )
        if batch is None:
            batch = FeedBatch(empty_frame(table.name), [failure])
        with duckdb.get_connection() as conn:
            summary = write_window(conn, table, batch.frame, window)
            check_results = run_raw_checks(context, conn, key, window)
        context.log.info(
            "%s: %d owned rows replaced, %d history rows added for report dates %s..%s",
            table.qualified,
            summary.replaced,
            summary.history_added,
            window.start,
            window.end,
        )
        sources = sorted(batch.frame["source"].unique()) if "source" in batch.frame else []
        return MaterializeResult(
            metadata={
                "rows_replaced": summary.replaced,
                "history_rows_added": summary.history_added,
                "sources": ", ".join(sources) or "none",
                "unavailable": MetadataValue.json(batch.unavailable),
                **({"failed": failure} if failure else {}),
            },
            check_results=check_results,
        )

    return _raw


def fetch_or_failure(
    context: AssetExecutionContext, source: RawSource, table: str, fetch: Callable[[], T]
) -> tuple[T | None, str | None]:
    """What ``fetch`` answers, or None and why: a feed down stays in its market.

    A feed none of whose hosts answered the run's probe is not asked at all; one that fails
    after its retries and fallbacks writes nothing. Either way the other feeds and the facts
    still run, and the quality gate decides about the report (its freshness checks name the
    market that is behind), so one outage does not turn into a cascade of skipped steps.
    """
    failure = source.unreachable_cause(table, context.run_id)
    if failure is None:
        try:
            return fetch(), None
        except FeedError as error:
            failure = str(error)
    context.log.error("%s; nothing more written to raw.%s", failure, table)
    return None, failure


def bars_fetch(market: Market) -> Fetch:
    return lambda source, start, end: source.fetch_bars(
        market, instruments(market.market), start, end
    )


def calendar_fetch(source: RawSource, start: date, end: date) -> FeedBatch:
    frames = [
        calendars.sessions(market.calendar, start, end).assign(market=market.market)
        for market in markets().values()
    ]
    return FeedBatch(pd.concat(frames, ignore_index=True))


market_sessions = build_raw_asset(
    "market_sessions",
    "calendars",
    set(),
    "Every market's exchange sessions (UTC open and close) from exchange-calendars.",
    calendar_fetch,
)
bars_assets = [
    build_raw_asset(
        f"{market.market}_bars",
        market.market,
        {market.feed},
        f"{market.name} daily bars as the {market.feed} feed returned them.",
        bars_fetch(market),
    )
    for market in markets().values()
]
cn_breadth = build_raw_asset(
    "cn_breadth",
    "cn",
    {"akshare"},
    "A-share breadth (advancers, decliners, unchanged) and turnover in CNY, one row per source "
    "and session: the dated legulegu counts of the latest session (market cn) and each "
    "exchange's daily turnover (market sse, szse); past counts come from raw.cn_stock_bars.",
    # build_raw_asset fetches from lookback_days before the window's sessions; live, the
    # exchanges are asked for the window's own sessions only (two calls each).
    lambda source, start, end: source.fetch_breadth(
        start, end, live_from=start + timedelta(days=source.lookback_days)
    ),
)
defi_protocol_tvl = build_raw_asset(
    "defi_protocol_tvl",
    "defi",
    {"defillama"},
    "DeFi protocol TVL in USD with category, per UTC day, from DefiLlama.",
    lambda source, start, end: source.fetch_protocol_tvl(start, end),
)
stablecoin_supply = build_raw_asset(
    "stablecoin_supply",
    "defi",
    {"defillama"},
    "Stablecoin circulating supply in USD per UTC day (USDT, USDC, TOTAL) from DefiLlama.",
    lambda source, start, end: source.fetch_stablecoins(start, end),
)


CN_STOCK_BARS = raw_key("cn_stock_bars")


@asset(
    key=CN_STOCK_BARS,
    group_name="cn",
    partitions_def=report_dates,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"duckdb", "akshare"},
    pool=DUCKDB_POOL,
    description="Per-stock A-share daily bars for the window's own sessions, so breadth of any "
    "past session comes from SQL. Resumable: each stock is saved as it arrives.",
    deps=[SOURCE_HEALTH],
    check_specs=raw_check_specs(CN_STOCK_BARS),
)
def cn_stock_bars(
    context: AssetExecutionContext, duckdb: DuckDBResource, source: MarketSource
) -> MaterializeResult:
    window = report_window(context)
    feeds = source.client()
    table = RAW_TABLES["cn_stock_bars"]
    with duckdb.get_connection() as conn:
        ensure_raw_schema(conn)
        done = fetched_stocks(conn, window)
        if done:
            context.log.info("cn_stock_bars: %d stocks already saved for this window", len(done))

        def save(codes: list[str], bars: pd.DataFrame) -> None:
            write_window(conn, table, bars, window)
            conn.execute(
                "INSERT INTO raw.cn_stock_fetches SELECT unnest(?::VARCHAR[]), ?, ?",
                [codes, window.start, window.end],
            )

        fetched, failure = fetch_or_failure(
            context,
            feeds,
            table.name,
            lambda: feeds.fetch_stock_bars(window, done, save, context.log),
        )
        check_results = run_raw_checks(context, conn, CN_STOCK_BARS, window)
    return MaterializeResult(
        metadata={
            "stocks_fetched": fetched or 0,
            "stocks_resumed": len(done),
            **({"failed": failure} if failure else {}),
        },
        check_results=check_results,
    )


def fetched_stocks(conn, window: ReportWindow) -> set[str]:
    """Stocks already saved for exactly this window: a re-run continues where the last stopped."""
    rows = conn.execute(
        "SELECT stock_code FROM raw.cn_stock_fetches WHERE window_start = ? AND window_end = ?",
        [window.start, window.end],
    ).fetchall()
    return {row[0] for row in rows}


raw_assets = [
    source_health,
    market_sessions,
    *bars_assets,
    cn_breadth,
    cn_stock_bars,
    defi_protocol_tvl,
    stablecoin_supply,
]
