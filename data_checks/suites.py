"""Great Expectations suites, one per kind of table, built from the universe configuration."""

from datetime import timedelta

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from assets.storage import RAW_TABLES, ReportWindow
from assets.universe import instruments
from data_checks.gx_runner import new_suite, validate
from data_checks.outcome import ERROR, CheckOutcome

# Reports near the window's start read sessions before it: Friday's close for a Sunday report,
# the last session before a week-long holiday, and the close before that for the return.
SESSION_MARGIN_DAYS = 20
MAX_PRICE = 1e9


def bars_suite(market: str) -> gx.ExpectationSuite:
    """Raw bars: known instruments, one row per session, non-null positive finite closes."""
    suite = new_suite(f"raw_{market}_bars")
    for column in ("instrument_id", "session_date", "close", "source", "fetched_at"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(
            column="close", min_value=0, max_value=MAX_PRICE, strict_min=True
        )
    )
    suite.add_expectation(
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["instrument_id", "session_date"])
    )
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(
            column="instrument_id",
            value_set=[i.instrument_id for i in instruments(market)],
        )
    )
    return suite


def check_bars(conn: duckdb.DuckDBPyConnection, market: str, window: ReportWindow) -> CheckOutcome:
    """Run the bars suite over the raw sessions the window's reports read."""
    table = RAW_TABLES[f"{market}_bars"]
    first, end = window.owned_sessions
    frame = conn.execute(
        f"SELECT * FROM {table.qualified} WHERE session_date >= ? AND session_date < ?",
        [first - timedelta(days=SESSION_MARGIN_DAYS), end],
    ).df()
    failures = validate(frame, bars_suite(market))
    keys = ["instrument_id", "session_date"]
    located = [f.rows[keys] for f in failures if not f.rows.empty]
    unlocated = any(f.rows.empty for f in failures)
    return CheckOutcome(
        name="bars_suite",
        asset=f"raw/{table.name}",
        severity=ERROR,
        messages=[f"raw.{table.name} {f.describe(keys)}" for f in failures],
        bad_rows=pd.concat(located).drop_duplicates() if located else frame[keys].iloc[:0],
        blocked_dates=frozenset(window.report_dates()) if unlocated else frozenset(),
    )
