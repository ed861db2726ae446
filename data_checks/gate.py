"""The quality gate: which report dates a window may publish.

The report asset calls ``evaluate`` itself, so the gate holds whatever selection or executor
runs it, even when the asset checks did not run in the same run (dagster issues 25112, 18472).
"""

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from assets.storage import ReportWindow
from assets.universe import markets
from data_checks.outcome import ERROR, CheckOutcome
from data_checks.suites import check_bars


def run_checks(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[CheckOutcome]:
    """Every check over the window, in a stable order."""
    return [check_bars(conn, market, window) for market in markets()]


def affected_report_dates(
    conn: duckdb.DuckDBPyConnection, bad_rows: pd.DataFrame, window: ReportWindow
) -> set[date]:
    """Report dates whose snapshot shows a bad row, or takes its return from one."""
    if bad_rows.empty:
        return set()
    conn.register("bad_rows", bad_rows)
    try:
        rows = conn.execute(
            """
            SELECT DISTINCT snapshot.report_date
            FROM marts.fct_report_snapshot AS snapshot
            LEFT JOIN marts.fct_market_daily AS daily
                ON daily.instrument_id = snapshot.instrument_id
                AND daily.session_date = snapshot.session_date
            JOIN bad_rows
                ON bad_rows.instrument_id = snapshot.instrument_id
                AND (bad_rows.session_date = snapshot.session_date
                     OR bad_rows.session_date = daily.previous_session_date)
            WHERE snapshot.report_date >= ? AND snapshot.report_date < ?
            """,
            [window.start, window.end],
        ).fetchall()
    finally:
        conn.unregister("bad_rows")
    return {row[0] for row in rows}


@dataclass(frozen=True)
class GateResult:
    outcomes: list[CheckOutcome]
    blocked: dict[date, list[str]]


def evaluate(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> GateResult:
    """Run the checks and map every ERROR to the report dates it blocks, with its reasons."""
    outcomes = run_checks(conn, window)
    blocked: dict[date, list[str]] = {}
    for outcome in outcomes:
        if outcome.passed or outcome.severity != ERROR:
            continue
        dates = set(outcome.blocked_dates) | affected_report_dates(conn, outcome.bad_rows, window)
        for report_date in dates:
            blocked.setdefault(report_date, []).append(outcome.summary())
    return GateResult(outcomes, blocked)
