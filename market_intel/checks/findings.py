"""The raw checks' findings as rows of ``quality.raw_findings``, the table dbt's gate reads.

A raw check runs in its raw asset's step; what it found is stored located (a bar, a day of a
dated feed, a report date, or nothing more precise than the window), so that the rule mapping a
finding to the report dates it touches lives in SQL only (docs/quality-gate.md).
"""

import duckdb
import pandas as pd

from market_intel.checks.outcome import CheckOutcome, Finding
from market_intel.checks.suites import sessions_read
from market_intel.storage import RAW_FINDINGS, RAW_FINDINGS_COLUMNS, ReportWindow

COLUMNS = [column.split()[0] for column in RAW_FINDINGS_COLUMNS.split(", ")]


def places(finding: Finding) -> list[dict]:
    """Where a finding applies, in the order the gate reads it: report dates, then flagged bars,
    then days of a dated table; none of them is one unlocated place (the whole window)."""
    if finding.report_dates:
        return [{"report_date": day} for day in sorted(finding.report_dates)]
    if finding.rows is not None and not finding.rows.empty:
        rows = finding.rows.assign(
            session_date=pd.to_datetime(finding.rows["session_date"]).dt.date
        )
        return [
            {"instrument_id": row.instrument_id, "session_date": row.session_date}
            for row in rows.drop_duplicates().itertuples()
        ]
    if finding.table and finding.dates:
        return [
            {"dated_table": finding.table, "session_date": day} for day in sorted(finding.dates)
        ]
    return [{}]


def finding_rows(outcome: CheckOutcome, window: ReportWindow) -> pd.DataFrame:
    """One row per place each finding of ``outcome`` flags; no rows when the check passed."""
    records = [
        {
            "check_name": outcome.name,
            "asset": outcome.asset,
            "severity": outcome.severity,
            "market": finding.market,
            "message": finding.message,
            "window_start": window.start,
            "window_end": window.end,
            **place,
        }
        for finding in outcome.findings
        for place in places(finding)
    ]
    return pd.DataFrame(records, columns=COLUMNS)


def replace_findings(
    conn: duckdb.DuckDBPyConnection, outcome: CheckOutcome, window: ReportWindow
) -> int:
    """Store what the check found for ``window`` in place of what it found before over the same
    ground, in one transaction; returns the rows written.

    The ground it re-validated: its located rows dated in the sessions it read for the window,
    those at the window's report dates, and unlocated ones of a window inside this one. Other
    windows' findings (earlier partitions) stay; a fixed re-run clears its own.
    """
    rows = finding_rows(outcome, window)
    first_session, end_session = sessions_read(window)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"""
            DELETE FROM {RAW_FINDINGS}
            WHERE check_name = ? AND asset = ?
                AND ((session_date >= ? AND session_date < ?)
                    OR (report_date >= ? AND report_date < ?)
                    OR (session_date IS NULL AND report_date IS NULL
                        AND window_start >= ? AND window_end <= ?))
            """,
            [
                outcome.name,
                outcome.asset,
                first_session,
                end_session,
                window.start,
                window.end,
                window.start,
                window.end,
            ],
        )
        if not rows.empty:
            conn.register("finding_rows", rows)
            try:
                conn.execute(f"INSERT INTO {RAW_FINDINGS} BY NAME SELECT * FROM finding_rows")
            finally:
                conn.unregister("finding_rows")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return len(rows)
