"""The checks of the quality gate: Great Expectations suites over raw tables, and the list of
every check the report shows.

Each raw check reads the rows the window's reports depend on, validates them with a GX suite,
and turns every failed expectation into ``Finding``s that name the feed, instrument, date and
values. The fact checks (freshness, market_session, ..., return_bounds) are SQL in dbt
(dbt_project/models/quality/fct_gate_findings.sql); here they are only named. Severities are
the dbt seed quality_checks, which dbt reads too; calendar_end_warning_days is
``market_intel/checks/config.yml`` (docs/quality-gate.md).
"""

import csv
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
from market_intel.settings import SEEDS_DIR
from market_intel.storage import RAW_TABLES, ReportWindow
from market_intel.universe import instruments, markets

CONFIG_PATH = Path(__file__).with_name("config.yml")
CHECKS_SEED = SEEDS_DIR / "quality_checks.csv"
# Reports near the window's start read sessions before it: Friday's close for a Sunday report,
# the last session before a week-long holiday, and the close before that for the return.
SESSION_MARGIN_DAYS = 20
MAX_PRICE = 1e9
SAMPLE_ROWS = 3


@cache
def config() -> dict:
    """config.yml, plus each check's ``severities`` and ``descriptions`` from the seed."""
    with CHECKS_SEED.open(newline="") as seed:
        rows = list(csv.DictReader(seed))
    severities = {row["check_name"]: row["severity"] for row in rows}
    wrong = {k: v for k, v in severities.items() if v not in ("ERROR", "WARN")}
    if wrong:
        raise ValueError(f"{CHECKS_SEED}: severities must be ERROR or WARN, got {wrong}")
    return {
        **yaml.safe_load(CONFIG_PATH.read_text()),
        "severities": severities,
        "descriptions": {row["check_name"]: row["description"] for row in rows},
    }


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
    """A named check on one asset; its severity comes from the configuration. A fact check has
    no ``find``: it is SQL in dbt (marts.fct_gate_findings)."""

    name: str
    asset: str
    description: str
    find: Callable[[duckdb.DuckDBPyConnection, ReportWindow], list[Finding]] | None = None

    @property
    def severity(self) -> str:
        return config()["severities"][self.name.split(":")[0]]

    @property
    def is_raw(self) -> bool:
        """A raw-table check runs in its raw asset's own step (``raw_checks``)."""
        return self.asset.startswith("raw/")

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


def all_checks() -> list[Check]:
    """Every check of the gate, in the order the report lists them."""
    checks = [fact_check(name, SNAPSHOT_ASSET) for name in SNAPSHOT_CHECKS]
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
        fact_check("return_bounds", "marts/fct_market_daily"),
    ]
    return checks


# The fact checks, computed in dbt (models/quality/fct_gate_findings.sql), by the asset they are on.
SNAPSHOT_ASSET = "marts/fct_report_snapshot"
SNAPSHOT_CHECKS = [
    "freshness",
    "market_session",
    "provisional_session",
    "unavailable_instruments",
    "feeds_present",
]


def fact_check(name: str, asset: str) -> Check:
    return Check(name, asset, config()["descriptions"][name])


def fact_checks() -> list[Check]:
    """The checks that dbt computes from the facts, in ``all_checks`` order."""
    return [check for check in all_checks() if check.find is None]


def raw_checks(asset: str) -> list[Check]:
    """The checks of one raw asset (``raw/us_bars``), in ``all_checks`` order: they run in that
    asset's own step, right after it writes, so a corrupt feed stops the run before dbt."""
    return [check for check in all_checks() if check.is_raw and check.asset == asset]
