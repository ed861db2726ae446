"""The quality gate: which report dates a window may publish, and what each report must say.

The report asset calls ``evaluate`` itself, so the gate holds whatever selection or executor
runs it, even when the asset checks did not run in the same run (dagster issues 25112, 18472).
"""

import bisect
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb

from market_intel.checks.outcome import ERROR, CheckOutcome, Finding
from market_intel.checks.suites import all_checks
from market_intel.storage import ReportWindow


def run_checks(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[CheckOutcome]:
    """Every check over the window; a table a check needs but nobody built yet is a failure."""
    outcomes = []
    for check in all_checks():
        try:
            outcomes.append(check.evaluate(conn, window))
        except duckdb.CatalogException as error:
            finding = Finding(f"{check.asset} {check.name}: cannot run: {error}".splitlines()[0])
            outcomes.append(
                CheckOutcome(check.name, check.asset, ERROR, check.description, [finding])
            )
    return outcomes


def rows_report_dates(
    conn: duckdb.DuckDBPyConnection, finding: Finding, window: ReportWindow
) -> set[date]:
    """Report dates whose snapshot shows a flagged row, or takes its return from one."""
    conn.register("flagged_rows", finding.rows)
    try:
        rows = conn.execute(
            """
            SELECT DISTINCT snapshot.report_date
            FROM marts.fct_report_snapshot AS snapshot
            LEFT JOIN marts.fct_market_daily AS daily
                ON daily.instrument_id = snapshot.instrument_id
                AND daily.session_date = snapshot.session_date
            JOIN flagged_rows AS flagged
                ON flagged.instrument_id = snapshot.instrument_id
                AND (flagged.session_date = snapshot.session_date
                     OR flagged.session_date = daily.previous_session_date)
            WHERE snapshot.report_date >= ? AND snapshot.report_date < ?
            """,
            [window.start, window.end],
        ).fetchall()
    except duckdb.CatalogException:
        return set(window.report_dates())
    finally:
        conn.unregister("flagged_rows")
    return {row[0] for row in rows}


def dated_report_dates(
    conn: duckdb.DuckDBPyConnection, finding: Finding, window: ReportWindow
) -> set[date]:
    """Report dates R whose latest day of the dated table on or before R-1 is flagged."""
    days = sorted(
        row[0]
        for row in conn.execute(f"SELECT DISTINCT session_date FROM {finding.table}").fetchall()
    )
    affected = set()
    for report_date in window.report_dates():
        position = bisect.bisect_right(days, report_date - timedelta(days=1))
        if position and days[position - 1] in finding.dates:
            affected.add(report_date)
    return affected


def report_dates_of(
    conn: duckdb.DuckDBPyConnection, finding: Finding, window: ReportWindow
) -> set[date]:
    if finding.report_dates:
        return set(finding.report_dates)
    if finding.rows is not None and not finding.rows.empty:
        return rows_report_dates(conn, finding, window)
    if finding.table and finding.dates:
        return dated_report_dates(conn, finding, window)
    return set(window.report_dates())


@dataclass
class DateVerdict:
    """What the gate says about one report date."""

    blocked: list[str] = field(default_factory=list)
    left_out: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    failed_checks: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GateResult:
    outcomes: list[CheckOutcome]
    verdicts: dict[date, DateVerdict]

    def verdict(self, report_date: date) -> DateVerdict:
        return self.verdicts.get(report_date, DateVerdict())

    @property
    def blocked(self) -> dict[date, list[str]]:
        return {d: v.blocked for d, v in sorted(self.verdicts.items()) if v.blocked}


def evaluate(
    conn: duckdb.DuckDBPyConnection, window: ReportWindow, partial: bool = False
) -> GateResult:
    """Run every check and say, per report date, what blocks it, what a partial report leaves
    out (``partial``: an ERROR confined to one market drops that market instead), and what is
    only a warning."""
    outcomes = run_checks(conn, window)
    verdicts: dict[date, DateVerdict] = {}
    for outcome in outcomes:
        for finding in outcome.findings:
            line = f"[{outcome.severity}] {finding.message}"
            for report_date in report_dates_of(conn, finding, window):
                verdict = verdicts.setdefault(report_date, DateVerdict())
                verdict.failed_checks.setdefault(f"{outcome.asset}:{outcome.name}", finding.message)
                if outcome.severity != ERROR:
                    verdict.warnings.append(line)
                elif partial and finding.market:
                    verdict.left_out.setdefault(finding.market, []).append(line)
                else:
                    verdict.blocked.append(line)
    return GateResult(outcomes, verdicts)
