"""The quality gate as the report reads it: dbt's views say, per report date, what every check
found (marts.fct_gate_findings) and whether an ERROR blocks it (marts.fct_report_verdict).

Nothing here runs a check or maps a finding to a date: that is SQL in dbt, computed once. This
module reads a window of both views and applies the report's one choice, the partial mode (an
ERROR confined to one market leaves that market out instead of blocking the date).
"""

from dataclasses import dataclass, field
from datetime import date

import duckdb

from market_intel.checks.outcome import ERROR
from market_intel.storage import ReportWindow

FINDINGS = "marts.fct_gate_findings"
VERDICTS = "marts.fct_report_verdict"


@dataclass(frozen=True)
class GateFinding:
    """One row of marts.fct_gate_findings."""

    report_date: date
    check_name: str
    asset: str
    severity: str
    market: str | None
    message: str

    @property
    def line(self) -> str:
        return f"[{self.severity}] {self.message}"


@dataclass(frozen=True)
class VerdictRow:
    """One row of marts.fct_report_verdict."""

    report_date: date
    has_error: bool
    error_lines: list[str]
    error_markets: list[str]
    has_unconfined_error: bool
    warning_lines: list[str]


@dataclass
class DateVerdict:
    """What the gate says about one report date, for the report."""

    blocked: list[str] = field(default_factory=list)
    left_out: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    failed_checks: dict[str, str] = field(default_factory=dict)


def read_findings(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[GateFinding]:
    """The window's findings, ordered as the verdict orders its lines."""
    rows = conn.execute(
        f"""
        SELECT report_date, check_name, asset, severity, market, message FROM {FINDINGS}
        WHERE report_date >= ? AND report_date < ?
        ORDER BY report_date, check_name, asset, message
        """,
        [window.start, window.end],
    ).fetchall()
    return [GateFinding(*row) for row in rows]


def read_verdict_rows(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> list[VerdictRow]:
    rows = conn.execute(
        f"""
        SELECT report_date, has_error, error_lines, error_markets, has_unconfined_error,
            warning_lines
        FROM {VERDICTS} WHERE report_date >= ? AND report_date < ? ORDER BY report_date
        """,
        [window.start, window.end],
    ).fetchall()
    return [VerdictRow(*row) for row in rows]


def date_verdict(row: VerdictRow, findings: list[GateFinding], partial: bool) -> DateVerdict:
    """The verdict of one date from its verdict row and its findings. ``partial``: the markets
    of market-confined ERROR findings are left out, and only an ERROR without a market blocks."""
    verdict = DateVerdict(warnings=list(row.warning_lines))
    for finding in findings:
        verdict.failed_checks.setdefault(f"{finding.asset}:{finding.check_name}", finding.message)
    if not row.has_error:
        return verdict
    if not partial:
        verdict.blocked = list(row.error_lines)
        return verdict
    errors = [f for f in findings if f.severity == ERROR]
    verdict.blocked = [f.line for f in errors if f.market is None]
    for market in row.error_markets:
        verdict.left_out[market] = [f.line for f in errors if f.market == market]
    return verdict


def verdicts(
    conn: duckdb.DuckDBPyConnection, window: ReportWindow, partial: bool = False
) -> dict[date, DateVerdict]:
    """Each report date of the window that the snapshot has, with its verdict (its ERROR and
    WARN lines, and each failed check's first message for the report's appendix). A gate view
    that cannot be read blocks every date of the window."""
    try:
        findings = read_findings(conn, window)
        rows = read_verdict_rows(conn, window)
    except duckdb.Error as error:
        reason = f"[{ERROR}] the quality gate cannot be read: {error}".splitlines()[0]
        return {d: DateVerdict(blocked=[reason]) for d in window.report_dates()}
    by_date: dict[date, list[GateFinding]] = {}
    for finding in findings:
        by_date.setdefault(finding.report_date, []).append(finding)
    return {
        row.report_date: date_verdict(row, by_date.get(row.report_date, []), partial)
        for row in rows
    }
