"""The checks of the quality gate: Great Expectations suites over raw tables and key facts.

Each check reads the rows the window's reports depend on, validates them with a GX suite, and
turns every failed expectation into ``Finding``s that name the feed, instrument, date and values.
Severities and thresholds come from ``market_intel/checks/config.yml`` (docs/quality-gate.md).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib import metadata
from pathlib import Path

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import yaml

from market_intel import calendars
from market_intel.checks.gx_runner import ExpectationFailure, new_suite, validate
from market_intel.checks.outcome import CheckOutcome, Finding
from market_intel.storage import RAW_TABLES, ReportWindow
from market_intel.universe import instruments, markets

CONFIG_PATH = Path(__file__).with_name("config.yml")
# Reports near the window's start read sessions before it: Friday's close for a Sunday report,
# the last session before a week-long holiday, and the close before that for the return.
SESSION_MARGIN_DAYS = 20
MAX_PRICE = 1e9
SAMPLE_ROWS = 3
# fct_report_snapshot.calendar: which calendar dates the session a report row is judged by.
PUBLISHED, PROVISIONAL = "published", "provisional"


@cache
def config() -> dict:
    loaded = yaml.safe_load(CONFIG_PATH.read_text())
    wrong = {k: v for k, v in loaded["severities"].items() if v not in ("ERROR", "WARN")}
    if wrong:
        raise ValueError(f"{CONFIG_PATH}: severities must be ERROR or WARN, got {wrong}")
    return loaded


def sessions_read(window: ReportWindow) -> tuple:
    """The session dates the window's reports read: its own, plus a margin before them."""
    first, end = window.owned_sessions
    return first - timedelta(days=SESSION_MARGIN_DAYS), end


def describe(
    failure: ExpectationFailure, table: str, key_columns: list[str], value_columns: list[str]
) -> str:
    """'raw.us_bars expect_...(close): 1 row(s): us/GSPC 2026-03-20 close=-5.0 [replay]'."""
    target = f"{failure.expectation}({failure.column})" if failure.column else failure.expectation
    if failure.rows.empty:
        return f"{table} {target}: observed {failure.observed}"
    samples = []
    for _, row in failure.rows.head(SAMPLE_ROWS).iterrows():
        keys = " ".join(str(row[c]) for c in key_columns if c in row)
        values = ", ".join(f"{c}={row[c]}" for c in value_columns if c in row)
        source = f" [{row['source']}]" if "source" in row else ""
        samples.append(f"{keys} {values}{source}".strip())
    more = f" (+{len(failure.rows) - SAMPLE_ROWS} more)" if len(failure.rows) > SAMPLE_ROWS else ""
    return f"{table} {target}: {len(failure.rows)} row(s): " + "; ".join(samples) + more


def gx_findings(
    frame: pd.DataFrame,
    suite: gx.ExpectationSuite,
    table: str,
    key_columns: list[str],
    market: str | None = None,
    dated_table: str | None = None,
) -> list[Finding]:
    """Validate ``frame`` and make one finding per failed expectation, located by its rows."""
    findings = []
    for failure in validate(frame, suite):
        columns = [failure.column] if failure.column else []
        if failure.expectation.startswith("expect_column_pair"):
            columns = [c for c in frame.columns if c in ("open", "high", "low", "close")]
        message = describe(failure, table, key_columns, columns).replace("  ", " ")
        rows = failure.rows
        if rows.empty:
            findings.append(Finding(message, market))
        elif "instrument_id" in rows:
            findings.append(Finding(message, market, rows=rows[["instrument_id", "session_date"]]))
        elif "report_date" in rows:
            findings.append(Finding(message, market, report_dates=frozenset(rows["report_date"])))
        else:
            dates = frozenset(pd.to_datetime(rows["session_date"]).dt.date)
            findings.append(Finding(message, market, dates=dates, table=dated_table))
    return findings


def rows_read(conn: duckdb.DuckDBPyConnection, table: str, window: ReportWindow) -> pd.DataFrame:
    """A table's rows for the sessions the window's reports read."""
    return read(
        conn,
        f"SELECT * FROM {table} WHERE session_date >= ? AND session_date < ?",
        list(sessions_read(window)),
    )


def read(conn: duckdb.DuckDBPyConnection, sql: str, params: list) -> pd.DataFrame:
    frame = conn.execute(sql, params).df()
    for column in ("session_date", "report_date", "expected_session_date"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


@dataclass(frozen=True)
class Check:
    """A named check on one asset; its severity comes from the configuration."""

    name: str
    asset: str
    description: str
    find: Callable[[duckdb.DuckDBPyConnection, ReportWindow], list[Finding]]

    @property
    def severity(self) -> str:
        return config()["severities"][self.name.split(":")[0]]

    def evaluate(self, conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> CheckOutcome:
        return CheckOutcome(
            self.name, self.asset, self.severity, self.description, self.find(conn, window)
        )


def bars_suite(market: str) -> gx.ExpectationSuite:
    """Raw bars: known instruments, one row per session, non-null positive finite closes, and
    high/low bracketing open and close where those are present."""
    suite = new_suite(f"raw_{market}_bars")
    for column in ("instrument_id", "session_date", "close", "source", "fetched_at"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    for column in ("open", "high", "low", "close"):
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(
                column=column, min_value=0, max_value=MAX_PRICE, strict_min=True
            )
        )
    for upper, lower in (("high", "open"), ("high", "close"), ("open", "low"), ("close", "low")):
        suite.add_expectation(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=upper,
                column_B=lower,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )
    suite.add_expectation(
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["instrument_id", "session_date"])
    )
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(
            column="instrument_id", value_set=[i.instrument_id for i in instruments(market)]
        )
    )
    return suite


def find_bad_bars(market: str) -> Callable:
    table = RAW_TABLES[f"{market}_bars"]

    def find(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
        frame = rows_read(conn, table.qualified, window)
        keys = ["instrument_id", "session_date"]
        return gx_findings(frame, bars_suite(market), table.qualified, keys, market)

    return find


def find_bars_off_calendar(market: str) -> Callable:
    """Bars dated on a day the exchange calendar has no session, for the days its published
    calendar covers: past them a bar confirms a provisional session (stg_market_sessions)."""
    table = RAW_TABLES[f"{market}_bars"]

    def find(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
        frame = read(
            conn,
            f"""
            SELECT bars.instrument_id, bars.session_date, bars.close, bars.source,
                   sessions.session_date IS NOT NULL AS on_calendar
            FROM {table.qualified} AS bars
            LEFT JOIN raw.market_sessions AS sessions
                ON sessions.market = ? AND sessions.session_date = bars.session_date
            WHERE bars.session_date >= ? AND bars.session_date < ?
                AND bars.session_date <= (
                    SELECT max(session_date) FROM raw.market_sessions
                    WHERE market = ? AND NOT coalesce(provisional, false)
                )
            """,
            [market, *sessions_read(window), market],
        )
        suite = new_suite(f"raw_{market}_bars_on_calendar")
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeInSet(column="on_calendar", value_set=[True])
        )
        calendar = markets()[market].calendar
        return gx_findings(
            frame,
            suite,
            f"{table.qualified} (calendar {calendar})",
            ["instrument_id", "session_date"],
            market,
        )

    return find


def find_bad_breadth(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    """Count snapshots (market cn) have every count and a turnover: their own, or both
    exchanges' (markets sse and szse; legulegu publishes none). Exchange rows have theirs."""
    frame = rows_read(conn, "raw.cn_breadth", window)
    is_snapshot = frame["market"] == "cn"
    exchanges = frame[~is_snapshot]
    both = exchanges.dropna(subset=["turnover_cny"]).groupby("session_date")["turnover_cny"]
    exchange_total = both.sum()[both.count() == 2]
    snapshots = frame[is_snapshot].copy()
    snapshots["turnover_cny"] = snapshots["turnover_cny"].fillna(
        snapshots["session_date"].map(exchange_total)
    )
    snapshot_suite = new_suite("raw_cn_breadth")
    for column in ("advancers", "decliners", "unchanged", "turnover_cny"):
        snapshot_suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
        snapshot_suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0)
        )
    snapshot_suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="session_date"))
    exchange_suite = new_suite("raw_cn_breadth_turnover")
    exchange_suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="turnover_cny"))
    exchange_suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(column="turnover_cny", min_value=0)
    )
    return gx_findings(
        snapshots,
        snapshot_suite,
        "raw.cn_breadth",
        ["session_date"],
        "cn",
        dated_table="raw.cn_breadth",
    ) + gx_findings(
        exchanges,
        exchange_suite,
        "raw.cn_breadth (exchange turnover)",
        ["market", "session_date"],
        "cn",
        dated_table="raw.cn_breadth",
    )


def find_bad_stock_bars(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    frame = rows_read(conn, "raw.cn_stock_bars", window)
    suite = new_suite("raw_cn_stock_bars")
    for column in ("close", "previous_close"):
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, strict_min=True)
        )
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="turnover_cny", min_value=0))
    return gx_findings(
        frame,
        suite,
        "raw.cn_stock_bars",
        ["stock_code", "session_date"],
        "cn",
        dated_table="raw.cn_stock_bars",
    )


def find_bad_defi(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    frame = rows_read(conn, "raw.defi_protocol_tvl", window)
    suite = new_suite("raw_defi_protocol_tvl")
    for column in ("protocol", "category", "tvl_usd"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="tvl_usd", min_value=0))
    return gx_findings(
        frame,
        suite,
        "raw.defi_protocol_tvl",
        ["protocol", "session_date"],
        "defi",
        dated_table="raw.defi_protocol_tvl",
    )


def find_bad_stablecoins(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    frame = rows_read(conn, "raw.stablecoin_supply", window)
    suite = new_suite("raw_stablecoin_supply")
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="circulating_usd"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="circulating_usd", min_value=0))
    suite.add_expectation(
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "session_date"])
    )
    return gx_findings(
        frame,
        suite,
        "raw.stablecoin_supply",
        ["symbol", "session_date"],
        "defi",
        dated_table="raw.stablecoin_supply",
    )


def find_extreme_returns(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    """Daily returns beyond their asset class's bound, unless a person confirmed the move."""
    bounds = pd.DataFrame(
        list(config()["return_bounds_pct"].items()), columns=["asset_class", "bound_pct"]
    )
    confirmed = pd.DataFrame(config()["confirmed_moves"], columns=["instrument_id", "session_date"])
    confirmed["session_date"] = pd.to_datetime(confirmed["session_date"]).dt.date
    conn.register("return_bounds", bounds)
    conn.register("confirmed_moves", confirmed)
    try:
        frame = read(
            conn,
            """
            SELECT daily.instrument_id, daily.session_date, daily.market, daily.source,
                round(daily.return_pct, 2) AS return_pct,
                abs(daily.return_pct) AS abs_return_pct,
                CASE WHEN confirmed.instrument_id IS NULL THEN coalesce(bounds.bound_pct, 0)
                    ELSE 'inf'::DOUBLE END AS bound_pct
            FROM marts.fct_market_daily AS daily
            JOIN config.instruments USING (instrument_id)
            LEFT JOIN return_bounds AS bounds USING (asset_class)
            LEFT JOIN confirmed_moves AS confirmed
                ON confirmed.instrument_id = daily.instrument_id
                AND confirmed.session_date = daily.session_date
            WHERE daily.session_date >= ? AND daily.session_date < ?
            """,
            list(sessions_read(window)),
        )
    finally:
        conn.unregister("return_bounds")
        conn.unregister("confirmed_moves")
    suite = new_suite("fct_market_daily_return_bounds")
    suite.add_expectation(
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="bound_pct",
            column_B="abs_return_pct",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        )
    )
    findings = []
    for failure in validate(frame, suite):
        for market, rows in failure.rows.groupby("market"):
            samples = "; ".join(
                f"{r.instrument_id} {r.session_date} return {r.return_pct:+.2f}% beyond "
                f"±{r.bound_pct:g}% [{r.source}]"
                for r in rows.head(SAMPLE_ROWS).itertuples()
            )
            findings.append(
                Finding(
                    f"marts.fct_market_daily return_bounds: {len(rows)} return(s) need "
                    f"confirmation (market_intel/checks/config.yml confirmed_moves): {samples}",
                    str(market),
                    rows=rows[["instrument_id", "session_date"]],
                )
            )
    return findings


def snapshot(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> pd.DataFrame:
    return read(
        conn,
        "SELECT * FROM marts.fct_report_snapshot WHERE report_date >= ? AND report_date < ?",
        [window.start, window.end],
    )


def stale_rows(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The snapshot rows whose status GX rejects as stale."""
    suite = new_suite(name)
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeInSet(column="status", value_set=["stale"]))
    failures = validate(frame, suite)
    return failures[0].rows if failures else frame.iloc[:0]


def find_lagging_instruments(
    conn: duckdb.DuckDBPyConnection, window: ReportWindow
) -> list[Finding]:
    """An instrument behind the session its calendar expects while its market is not."""
    frame = snapshot(conn, window)
    rows = stale_rows(frame, "fct_report_snapshot_freshness")
    findings = []
    for row in rows.itertuples():
        others = frame[
            (frame["report_date"] == row.report_date)
            & (frame["market"] == row.market)
            & (frame["status"].isin(["open", "closed"]))
        ]
        if others.empty:
            continue
        findings.append(
            Finding(
                f"{row.instrument_id} lags its market for report {row.report_date}: data ends "
                f"{row.session_date} ({row.sessions_behind} session(s) behind), the calendar "
                f"expects {row.expected_session_date} and {len(others)} other "
                f"{markets()[row.market].name} instrument(s) have it [{row.source}]",
                row.market,
                report_dates=frozenset([row.report_date]),
            )
        )
    return findings


# Which calendar expected the session, and what a whole market without it means.
STALE_WORDING = {
    PUBLISHED: (
        "calendar ({calendar})",
        "the feed is late, or the exchange had an unscheduled closure (e.g. a typhoon day)",
    ),
    PROVISIONAL: (
        "provisional calendar (past {calendar}'s last published session)",
        (
            "the feed is late, or the exchange closed on a day the provisional rules do not "
            "know (a warning: the rules are a guess until exchange-calendars publishes the year)"
        ),
    ),
}


def find_stale_markets(calendar: str) -> Callable:
    """A whole market without the session its calendar expects: a late feed, or an unscheduled
    closure (a typhoon day) that the calendar library cannot know. ``calendar`` (published or
    provisional) selects the report dates whose expected session that calendar dates."""

    def find(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
        frame = snapshot(conn, window)
        frame = frame[frame["calendar"].fillna(PUBLISHED) == calendar]
        return stale_market_findings(frame, calendar)

    return find


def stale_market_findings(frame: pd.DataFrame, calendar: str) -> list[Finding]:
    rows = stale_rows(frame, f"fct_report_snapshot_market_session_{calendar}")
    findings = []
    for (report_date, market), group in rows.groupby(["report_date", "market"]):
        fine = frame[
            (frame["report_date"] == report_date)
            & (frame["market"] == market)
            & (frame["status"].isin(["open", "closed"]))
        ]
        if not fine.empty:
            continue
        latest = max(group["session_date"])
        expected = max(group["expected_session_date"])
        findings.append(
            Finding(
                f"{markets()[market].name} is stale for report {report_date}: the "
                f"{STALE_WORDING[calendar][0].format(calendar=markets()[market].calendar)} "
                f"expects session {expected}, the data ends {latest} "
                f"({int(group['sessions_behind'].max())} session(s) behind) — "
                f"{STALE_WORDING[calendar][1]}",
                str(market),
                report_dates=frozenset([report_date]),
            )
        )
    return findings


def find_calendar_ends(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    """Each market calendar whose last published session is within the configured number of
    days of a report date (or already past): from then on a provisional calendar dates it."""
    days = config()["calendar_end_warning_days"]
    version = metadata.version("exchange-calendars")
    findings = []
    for market in markets().values():
        end = calendars.last_published_session(market.calendar)
        dates = [d for d in window.report_dates() if d >= end - timedelta(days=days)]
        if not dates:
            continue
        rules = calendars.PROVISIONAL_RULES.get(market.calendar)
        after = (
            f"later sessions come from the provisional rules of pandas-market-calendars' {rules} "
            "calendar and are marked provisional"
            if rules
            else "no later session is known (this calendar has no provisional rules)"
        )
        findings.append(
            Finding(
                f"calendar {market.calendar} ({market.name}) of exchange-calendars {version} "
                f"publishes sessions only up to {end}, {days} days or less after report(s) "
                f"{dates[0]}..{dates[-1]} (or before them): {after}. Fix: raise the "
                "exchange-calendars pin in pyproject.toml to a release whose "
                f"{market.calendar} calendar goes past {end}",
                market.market,
                report_dates=frozenset(dates),
            )
        )
    return findings


def find_unavailable(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    frame = snapshot(conn, window)
    suite = new_suite("fct_report_snapshot_unavailable")
    suite.add_expectation(
        gxe.ExpectColumnValuesToNotBeInSet(column="status", value_set=["unavailable"])
    )
    findings = []
    for failure in validate(frame, suite):
        for instrument_id, rows in failure.rows.groupby("instrument_id"):
            dates = sorted(rows["report_date"])
            findings.append(
                Finding(
                    f"{instrument_id}: no data from the source for report(s) "
                    f"{dates[0]}..{dates[-1]}; shown as unavailable",
                    str(rows["market"].iloc[0]),
                    report_dates=frozenset(dates),
                )
            )
    return findings


# Feeds that are one series per day rather than per instrument: (replay name, fact, date column,
# market). A day without rows in the week before a report date means the source provided none.
DATED_FEEDS = [
    ("cn/breadth", "marts.fct_cn_breadth", "session_date", "cn"),
    ("defi/protocols", "marts.fct_defi_category_tvl", "tvl_date", "defi"),
    ("defi/stablecoins", "marts.fct_stablecoin_supply", "supply_date", "defi"),
]
FEED_PRESENCE_DAYS = 7


def find_missing_feeds(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    """A dated feed with no data for a report: shown as unavailable, like a missing instrument."""
    findings = []
    for feed, table, column, market in DATED_FEEDS:
        days = {
            row[0]
            for row in conn.execute(
                f"SELECT DISTINCT {column} FROM {table} WHERE {column} >= ? AND {column} < ?",
                [window.start - timedelta(days=FEED_PRESENCE_DAYS + 1), window.end],
            ).fetchall()
        }
        missing = [
            report_date
            for report_date in window.report_dates()
            if not any(
                report_date - timedelta(days=back) in days
                for back in range(1, FEED_PRESENCE_DAYS + 1)
            )
        ]
        if missing:
            findings.append(
                Finding(
                    f"{feed}: no data from the source in the {FEED_PRESENCE_DAYS} days before "
                    f"report(s) {missing[0]}..{missing[-1]}; shown as unavailable",
                    market,
                    report_dates=frozenset(missing),
                )
            )
    return findings


def find_breadth_mismatch(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    frame = read(
        conn,
        "SELECT *, total - (advancers + decliners + unchanged) AS unexplained "
        "FROM marts.fct_cn_breadth WHERE session_date >= ? AND session_date < ?",
        list(sessions_read(window)),
    )
    suite = new_suite("fct_cn_breadth_totals")
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(column="unexplained", min_value=0, max_value=0)
    )
    for column in ("advancers", "decliners", "unchanged", "total"):
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0))
    return gx_findings(
        frame,
        suite,
        "marts.fct_cn_breadth",
        ["session_date"],
        "cn",
        dated_table="marts.fct_cn_breadth",
    )


def find_spread_errors(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[Finding]:
    frame = read(
        conn,
        """
        SELECT report_date, left_id, right_id, spread_bps, left_return_pct, right_return_pct,
            spread_bps - 100 * (left_return_pct - right_return_pct) AS residual_bps
        FROM marts.fct_cross_market_divergence
        WHERE report_date >= ? AND report_date < ?
        """,
        [window.start, window.end],
    )
    suite = new_suite("fct_cross_market_divergence_arithmetic")
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(column="residual_bps", min_value=-1e-6, max_value=1e-6)
    )
    return gx_findings(
        frame, suite, "marts.fct_cross_market_divergence", ["report_date", "left_id", "right_id"]
    )


def all_checks() -> list[Check]:
    """Every check of the gate, in the order the report lists them."""
    checks = [
        Check(
            "freshness",
            "marts/fct_report_snapshot",
            "each instrument has the session its calendar expects when its market does",
            find_lagging_instruments,
        ),
        Check(
            "market_session",
            "marts/fct_report_snapshot",
            "each market has the session its calendar expects (late feed or unscheduled closure)",
            find_stale_markets(PUBLISHED),
        ),
        Check(
            "provisional_session",
            "marts/fct_report_snapshot",
            "each market has the session its provisional calendar expects (past the published "
            "calendar's end: late feed, or a holiday the rules do not know)",
            find_stale_markets(PROVISIONAL),
        ),
        Check(
            "unavailable_instruments",
            "marts/fct_report_snapshot",
            "every instrument of the universe is provided by its source",
            find_unavailable,
        ),
        Check(
            "feeds_present",
            "marts/fct_report_snapshot",
            "breadth, DeFi TVL and stablecoin supply are provided for the report's week",
            find_missing_feeds,
        ),
    ]
    for market in markets():
        checks += [
            Check(
                "bars_suite",
                f"raw/{market}_bars",
                "schema, non-null positive finite prices, high/low bracket open/close, "
                "one row per instrument and session, known instruments",
                find_bad_bars(market),
            ),
            Check(
                "bars_on_calendar",
                f"raw/{market}_bars",
                "every bar falls on a session of the instrument's exchange calendar",
                find_bars_off_calendar(market),
            ),
        ]
    checks += [
        Check(
            "calendar_end",
            "raw/market_sessions",
            "no market calendar ends (its last published session) within "
            f"{config()['calendar_end_warning_days']} days of the report date",
            find_calendar_ends,
        ),
        Check(
            "breadth_suite",
            "raw/cn_breadth",
            "non-negative counts and turnover, one row per session",
            find_bad_breadth,
        ),
        Check(
            "stock_bars_suite",
            "raw/cn_stock_bars",
            "positive closes and previous closes, non-negative turnover",
            find_bad_stock_bars,
        ),
        Check(
            "defi_suite",
            "raw/defi_protocol_tvl",
            "named protocols with a category and non-negative TVL",
            find_bad_defi,
        ),
        Check(
            "stablecoin_suite",
            "raw/stablecoin_supply",
            "non-negative supply, one row per coin and day",
            find_bad_stablecoins,
        ),
        Check(
            "return_bounds",
            "marts/fct_market_daily",
            "daily returns within the bound of their asset class unless confirmed",
            find_extreme_returns,
        ),
        Check(
            "breadth_totals",
            "marts/fct_cn_breadth",
            "advancers, decliners and unchanged add up to the total and are non-negative",
            find_breadth_mismatch,
        ),
        Check(
            "divergence_arithmetic",
            "marts/fct_cross_market_divergence",
            "each spread equals the difference of its returns",
            find_spread_errors,
        ),
    ]
    return checks
