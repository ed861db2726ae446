"""Raw-table checks run in their raw asset's own step and leave their findings, located, in
quality.raw_findings for dbt's gate: first the pure rows and their replacement, then a real run
in which a bad raw bar fails a blocking check on raw/us_bars and stops the run before dbt."""

from datetime import date

import duckdb
import pandas as pd
import pytest
from dagster import AssetCheckSeverity, AssetKey, AssetSelection

from market_intel.checks.findings import finding_rows, replace_findings
from market_intel.checks.outcome import ERROR, WARN, CheckOutcome, Finding
from market_intel.checks.suites import all_checks, raw_checks
from market_intel.storage import ReportWindow, ensure_raw_schema
from tests.conftest import Pipeline

WINDOW = ReportWindow(date(2026, 3, 22), date(2026, 3, 24))
EARLIER = ReportWindow(date(2026, 1, 10), date(2026, 1, 11))
FRIDAY = date(2026, 3, 20)
US_BARS = AssetKey(["raw", "us_bars"])


def bar_finding(instrument_id: str, session_date: date) -> Finding:
    rows = pd.DataFrame({"instrument_id": [instrument_id], "session_date": [session_date]})
    return Finding(f"raw.us_bars close: {instrument_id} {session_date}", "us", rows=rows)


def outcome(findings: list[Finding], name: str = "bars_suite") -> CheckOutcome:
    return CheckOutcome(name, "raw/us_bars", ERROR, "test", findings)


def stored(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    return conn.execute(
        "SELECT check_name, instrument_id, session_date, window_start FROM quality.raw_findings "
        "ORDER BY ALL NULLS FIRST"
    ).fetchall()


def downstream_of(key: AssetKey) -> set[AssetKey]:
    from pipelines.definitions import defs

    selection = AssetSelection.assets(key).downstream(include_self=False)
    return set(selection.resolve(defs.resolve_asset_graph()))


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(":memory:")
    ensure_raw_schema(conn)
    return conn


def test_raw_checks_are_those_of_the_asset_in_gate_order() -> None:
    assert [c.name for c in raw_checks("raw/us_bars")] == ["bars_suite", "bars_on_calendar"]
    assert [c.name for c in raw_checks("raw/market_sessions")] == ["calendar_end"]
    assert raw_checks("marts/fct_report_snapshot") == []
    every_raw = [(c.asset, c.name) for c in all_checks() if c.is_raw]
    assets = dict.fromkeys(asset for asset, _ in every_raw)
    assert [(c.asset, c.name) for asset in assets for c in raw_checks(asset)] == every_raw


def test_finding_rows_locate_each_kind_of_finding() -> None:
    duplicated = pd.DataFrame(
        {"instrument_id": ["us/GSPC", "us/GSPC"], "session_date": [FRIDAY, FRIDAY]}
    )
    findings = [
        Finding("bar", "us", rows=duplicated),
        Finding("day", "cn", dates=frozenset([FRIDAY]), table="raw.cn_breadth"),
        Finding("reports", "us", report_dates=frozenset([date(2026, 3, 23), date(2026, 3, 22)])),
        Finding("window"),
    ]
    rows = finding_rows(CheckOutcome("bars_suite", "raw/us_bars", WARN, "test", findings), WINDOW)

    located = rows[
        ["message", "market", "instrument_id", "session_date", "dated_table", "report_date"]
    ]
    assert located.astype(object).where(located.notna(), None).values.tolist() == [
        ["bar", "us", "us/GSPC", FRIDAY, None, None],
        ["day", "cn", None, FRIDAY, "raw.cn_breadth", None],
        ["reports", "us", None, None, None, date(2026, 3, 22)],
        ["reports", "us", None, None, None, date(2026, 3, 23)],
        ["window", None, None, None, None, None],
    ]
    assert set(rows["check_name"]) == {"bars_suite"} and set(rows["asset"]) == {"raw/us_bars"}
    assert set(rows["severity"]) == {WARN}
    assert set(zip(rows["window_start"], rows["window_end"])) == {(WINDOW.start, WINDOW.end)}
    assert finding_rows(outcome([]), WINDOW).empty


def test_replacing_keeps_other_windows_and_checks_and_clears_a_fixed_rerun(conn) -> None:
    replace_findings(conn, outcome([bar_finding("us/DJI", date(2026, 1, 9))]), EARLIER)
    replace_findings(conn, outcome([Finding("unlocated")], "bars_on_calendar"), WINDOW)
    written = replace_findings(
        conn, outcome([bar_finding("us/GSPC", FRIDAY), Finding("x")]), WINDOW
    )
    assert written == 2
    # Running the same window again with the same findings writes them once.
    replace_findings(conn, outcome([bar_finding("us/GSPC", FRIDAY), Finding("x")]), WINDOW)
    assert stored(conn) == [
        ("bars_on_calendar", None, None, WINDOW.start),
        ("bars_suite", None, None, WINDOW.start),
        ("bars_suite", "us/DJI", date(2026, 1, 9), EARLIER.start),
        ("bars_suite", "us/GSPC", FRIDAY, WINDOW.start),
    ]

    assert replace_findings(conn, outcome([]), WINDOW) == 0  # the fixed re-run passes

    assert stored(conn) == [
        ("bars_on_calendar", None, None, WINDOW.start),
        ("bars_suite", "us/DJI", date(2026, 1, 9), EARLIER.start),
    ]


def test_replacing_report_dated_findings_clears_only_the_windows_dates(conn) -> None:
    def calendar_end(*report_dates: date) -> CheckOutcome:
        findings = [Finding("ends", "cn", report_dates=frozenset(report_dates))]
        return CheckOutcome("calendar_end", "raw/market_sessions", WARN, "test", findings)

    later = ReportWindow(date(2026, 3, 24), date(2026, 3, 26))
    replace_findings(conn, calendar_end(date(2026, 3, 22), date(2026, 3, 23)), WINDOW)
    replace_findings(conn, calendar_end(date(2026, 3, 24)), later)
    passed = CheckOutcome("calendar_end", "raw/market_sessions", WARN, "test", [])
    replace_findings(conn, passed, WINDOW)

    rows = conn.execute("SELECT report_date, window_start FROM quality.raw_findings").fetchall()
    assert rows == [(date(2026, 3, 24), later.start)]


# --- in a real run -------------------------------------------------------------------------


def test_a_bad_raw_bar_fails_its_blocking_check_in_the_raw_step_before_dbt(
    pipeline: Pipeline,
) -> None:
    replay = pipeline.use_replay_of_demo()
    gspc = replay / "us" / "GSPC.csv"
    good = gspc.read_text()
    gspc.write_text(good.replace(",6506.48,", ",-6506.48,"))

    result = pipeline.run("2026-03-21", raise_on_error=False)

    assert not result.success
    events = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    evaluations = {
        (e.asset_check_evaluation_data.asset_key, e.asset_check_evaluation_data.check_name): e
        for e in events
    }
    raw = {(AssetKey(c.asset.split("/")), c.name) for c in all_checks() if c.is_raw}
    assert raw <= set(evaluations)
    for asset_key, name in raw:  # each once, in its raw asset's own step
        (event,) = [
            e
            for e in events
            if e.asset_check_evaluation_data.check_name == name
            and e.asset_check_evaluation_data.asset_key == asset_key
        ]
        assert event.step_key == "__".join(asset_key.path)
    failed = {key for key in raw if not evaluations[key].asset_check_evaluation_data.passed}
    assert failed == {(US_BARS, "bars_suite")}

    bad = evaluations[(US_BARS, "bars_suite")].asset_check_evaluation_data
    assert bad.blocking is True
    assert bad.severity == AssetCheckSeverity.ERROR
    assert "us/GSPC 2026-03-20 close=-6506.48" in bad.description

    failures = {
        e.step_key: e.step_failure_data.error.message
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    }
    assert "1 blocking asset check failed with ERROR severity" in failures["raw__us_bars"]
    downstream = downstream_of(US_BARS)
    assert AssetKey(["staging", "stg_market_bars"]) in downstream
    assert AssetKey("market_intelligence_report") in downstream
    materialized = {
        e.asset_key for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
    }
    assert US_BARS in materialized  # its rows are written, and nothing built on them
    assert not materialized & downstream
    assert not {key for key, _ in evaluations} & downstream

    findings = pipeline.query(
        "SELECT check_name, asset, severity, market, instrument_id, session_date, dated_table, "
        "report_date, window_start, window_end, message FROM quality.raw_findings ORDER BY message"
    )
    assert len(findings) >= 1
    row = findings[0]
    assert row[:10] == (
        "bars_suite",
        "raw/us_bars",
        ERROR,
        "us",
        "us/GSPC",
        FRIDAY,
        None,
        None,
        date(2026, 3, 21),
        date(2026, 3, 22),
    )
    assert all(r[4:6] == ("us/GSPC", FRIDAY) for r in findings)
    assert "raw.us_bars" in row[10] and "us/GSPC 2026-03-20" in row[10]

    # The fixed feed, re-run for the same date, passes and clears its own findings.
    gspc.write_text(good)
    fixed = pipeline.run("2026-03-21", selection=[US_BARS])
    assert fixed.success
    assert pipeline.query("SELECT count(*) FROM quality.raw_findings") == [(0,)]
