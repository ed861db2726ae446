"""Calendars past their end: exchange-calendars 4.13.2 publishes XSHG up to 2026-12-31, and a
provisional rule-based calendar (pandas-market-calendars' SSE rules) dates the A-share sessions
after it, confirmed by the feed's own bars (docs/feeds.md, "Calendars").

Three levels: the calendar function; the dbt rule that lets the bars confirm provisional days
(dbt run of the staging view and fct_market_daily over a small hand-made database); and one
pipeline run for report date 2027-01-06 over real data extended with synthetic bars into
January 2027, which must publish the A-share market with session 2027-01-05, marked provisional.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import exchange_calendars as xcals
import pandas as pd
import pytest
from dagster import partition_loading_context

from market_intel import calendars
from market_intel.settings import DBT_PROJECT_DIR, DEMO_DATA_DIR
from market_intel.storage import ensure_raw_schema
from tests.conftest import REFERENCE_DATA, REFERENCE_FILES, Pipeline

PUBLISHED_END = date(2026, 12, 31)


def day(text: str) -> date:
    return date.fromisoformat(text)


def xshg(first: str, last: str) -> pd.DataFrame:
    """XSHG sessions ``first..last`` (inclusive) from market_intel.calendars, by date."""
    frame = calendars.sessions("XSHG", day(first), day(last) + timedelta(days=1))
    return frame.set_index("session_date")


# --- the calendar function ---------------------------------------------------------------------


def test_the_installed_xshg_calendar_ends_on_2026_12_31() -> None:
    assert calendars.last_published_session("XSHG") == PUBLISHED_END


def test_new_year_2027_is_a_holiday_and_the_monday_after_a_session() -> None:
    sessions = xshg("2026-12-30", "2027-01-08")
    assert day("2027-01-01") not in sessions.index  # New Year's Day, a Friday
    assert day("2027-01-02") not in sessions.index  # weekend
    assert day("2027-01-04") in sessions.index
    assert list(sessions.index) == [
        day(d)
        for d in (
            "2026-12-30",
            "2026-12-31",
            "2027-01-04",
            "2027-01-05",
            "2027-01-06",
            "2027-01-07",
            "2027-01-08",
        )
    ]


def test_sessions_past_the_published_end_are_provisional_and_before_it_not() -> None:
    sessions = xshg("2026-12-28", "2027-01-06")
    assert sessions["provisional"].to_dict() == {
        day("2026-12-28"): False,
        day("2026-12-29"): False,
        day("2026-12-30"): False,
        day("2026-12-31"): False,
        day("2027-01-04"): True,
        day("2027-01-05"): True,
        day("2027-01-06"): True,
    }


def test_provisional_sessions_keep_the_exchange_hours() -> None:
    """09:30-15:00 Asia/Shanghai (UTC+8, no daylight saving): 01:30-07:00 UTC, as published."""
    sessions = xshg("2026-12-31", "2027-01-04")
    assert sessions.loc[day("2027-01-04"), "open_utc"] == pd.Timestamp("2027-01-04 01:30")
    assert sessions.loc[day("2027-01-04"), "close_utc"] == pd.Timestamp("2027-01-04 07:00")
    assert sessions.loc[day("2026-12-31"), "open_utc"] == pd.Timestamp("2026-12-31 01:30")
    assert sessions.loc[day("2026-12-31"), "close_utc"] == pd.Timestamp("2026-12-31 07:00")


def test_the_provisional_rules_agree_with_the_published_calendar_where_both_exist() -> None:
    """The stand-in's holiday list matches exchange-calendars over the published years."""
    rules = calendars.provisional_calendar("XSHG")
    published = xcals.get_calendar("XSHG", start="2024-01-01").sessions
    stand_in = rules.valid_days("2024-01-01", PUBLISHED_END.isoformat()).tz_localize(None)
    assert list(stand_in) == list(published)


def test_the_2027_holidays_of_the_provisional_rules() -> None:
    """What pandas-market-calendars 5.5.0 guesses for 2027 (docs/feeds.md lists them)."""
    sessions = set(xshg("2027-01-01", "2027-12-31").index)
    weekdays = pd.bdate_range("2027-01-01", "2027-12-31").date
    assert sorted(d.isoformat() for d in weekdays if d not in sessions) == [
        "2027-01-01",
        "2027-02-05",
        "2027-02-08",
        "2027-02-09",
        "2027-02-10",
        "2027-02-11",
        "2027-04-05",
        "2027-05-03",
        "2027-06-09",
        "2027-09-15",
        "2027-10-01",
        "2027-10-04",
        "2027-10-05",
        "2027-10-06",
        "2027-10-07",
    ]


def test_calendars_without_provisional_rules_are_never_provisional() -> None:
    for name in ("XNYS", "XHKG", "24/7"):
        frame = calendars.sessions(name, day("2026-12-28"), day("2027-01-08"))
        assert not frame.empty and not frame["provisional"].any(), name
    assert calendars.provisional_calendar("XNYS") is None


# --- the feed confirms the provisional calendar (dbt) ------------------------------------------

CN = "cn/sh000001"
# Bars of one A-share index, by day: every published session from 12-21 plus a stray Saturday
# (12-26, still off the published calendar), then on provisional days a bar on New Year's Day
# (which the rules list as a holiday), none on listed 01-06 although 01-07 has one, and none
# from 01-08 on (expected sessions the data has not reached).
CONFIRM_BARS = [
    *pd.bdate_range("2026-12-21", "2026-12-31").date,
    day("2026-12-26"),
    day("2027-01-01"),
    day("2027-01-04"),
    day("2027-01-05"),
    day("2027-01-07"),
]


@pytest.fixture(scope="module")
def confirm_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """raw tables with the cn calendar and CONFIRM_BARS, then the staging views and
    fct_market_daily built by dbt (a separate target folder: the project's stays untouched)."""
    root = tmp_path_factory.mktemp("confirm")
    path = root / "confirm.duckdb"
    with duckdb.connect(str(path)) as conn:
        ensure_raw_schema(conn)
        sessions = calendars.sessions("XSHG", day("2026-12-14"), day("2027-01-16"))
        conn.register("sessions", sessions.assign(market="cn"))
        conn.execute("INSERT INTO raw.market_sessions BY NAME SELECT * FROM sessions")
        bars = pd.DataFrame(
            {
                "instrument_id": CN,
                "session_date": sorted(CONFIRM_BARS),
                "close": [3900.0 + n for n in range(len(CONFIRM_BARS))],
                "source": "replay",
                "is_fallback": False,
                "fetched_at": pd.Timestamp("2027-01-08 08:00"),
            }
        )
        conn.register("bars", bars)
        conn.execute("INSERT INTO raw.cn_bars BY NAME SELECT * FROM bars")
    env = {**os.environ, "MARKET_INTEL_DB": str(path)}
    command = [
        str(Path(sys.executable).with_name("dbt")),
        "run",
        "--select",
        "stg_market_bars stg_market_sessions fct_market_daily",
        "--target-path",
        str(root / "target"),
        "--log-path",
        str(root / "logs"),
    ]
    done = subprocess.run(
        command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:]
    return path


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_a_bar_on_a_day_the_provisional_calendar_does_not_list_is_a_session(
    confirm_db: Path,
) -> None:
    rows = query(
        confirm_db,
        "SELECT open_utc, close_utc, provisional, previous_session_date "
        "FROM staging.stg_market_sessions WHERE market = 'cn' AND session_date = '2027-01-01'",
    )
    assert rows == [
        (datetime(2027, 1, 1, 1, 30), datetime(2027, 1, 1, 7, 0), True, day("2026-12-31"))
    ]
    daily = query(
        confirm_db,
        "SELECT session_date, previous_session_date, return_status, calendar "
        "FROM marts.fct_market_daily WHERE session_date >= '2026-12-31' ORDER BY 1",
    )
    assert daily == [
        (day("2026-12-31"), day("2026-12-30"), "ok", "published"),
        (day("2027-01-01"), day("2026-12-31"), "ok", "provisional"),
        (day("2027-01-04"), day("2027-01-01"), "ok", "provisional"),
        (day("2027-01-05"), day("2027-01-04"), "ok", "provisional"),
        # 01-06 was listed, but the market's bars skip it and go on on 01-07: no session
        (day("2027-01-07"), day("2027-01-05"), "ok", "provisional"),
    ]


def test_listed_days_the_bars_skipped_are_dropped_and_days_not_reached_yet_kept(
    confirm_db: Path,
) -> None:
    rows = query(
        confirm_db,
        "SELECT session_date FROM staging.stg_market_sessions "
        "WHERE market = 'cn' AND session_date >= '2027-01-01' ORDER BY 1",
    )
    assert [row[0].isoformat() for row in rows] == [
        "2027-01-01",
        "2027-01-04",
        "2027-01-05",
        "2027-01-07",
        "2027-01-08",
        "2027-01-11",
        "2027-01-12",
        "2027-01-13",
        "2027-01-14",
        "2027-01-15",
    ]


def test_the_published_calendar_is_not_changed_by_the_data(confirm_db: Path) -> None:
    saturday = query(
        confirm_db,
        "SELECT return_status, calendar FROM marts.fct_market_daily "
        "WHERE session_date = '2026-12-26'",
    )
    assert saturday == [("off_calendar", "published")]
    published = query(
        confirm_db,
        "SELECT count(*), bool_or(provisional) FROM staging.stg_market_sessions "
        "WHERE market = 'cn' AND session_date <= '2026-12-31'",
    )
    assert published == [(len(xshg("2026-12-14", "2026-12-31")), False)]


# --- a replay of real data extended into January 2027 ------------------------------------------

REPORT_DATE = "2027-01-06"
# Real closes: ../shared/reference-data where the file exists (conftest.REFERENCE_FILES, as in
# tests/test_facts_reference.py), the demo data otherwise.
# SYNTHETIC bars, made up by this test: each instrument gets closes on its market's sessions
# from SYNTHETIC_FROM through 2027-01-05, moving by SYNTHETIC_MOVES in turn from its last real
# close. The A-share days are written out (weekdays but New Year's Day 2027), not taken from the
# calendar under test; the other markets' come from exchange-calendars, which publishes them.
SYNTHETIC_FROM = date(2026, 12, 21)
SYNTHETIC_LAST = date(2027, 1, 5)
CN_SYNTHETIC_DAYS = [
    *pd.bdate_range("2026-12-21", "2026-12-31").date,
    day("2027-01-04"),
    day("2027-01-05"),
]
XCALS = {"us": "XNYS", "hk": "XHKG", "crypto": "24/7"}
SYNTHETIC_MOVES = [0.004, -0.003, 0.002, -0.001, 0.003]


def synthetic_days(market: str) -> list[date]:
    if market == "cn":
        return list(CN_SYNTHETIC_DAYS)
    calendar = xcals.get_calendar(XCALS[market], start="2026-01-01")
    return [
        s.date()
        for s in calendar.sessions_in_range(SYNTHETIC_FROM.isoformat(), SYNTHETIC_LAST.isoformat())
    ]


def real_series(instrument_id: str) -> pd.DataFrame:
    """The instrument's real bars: the reference file if present, else the demo file."""
    name = REFERENCE_FILES.get(instrument_id)
    reference = REFERENCE_DATA / name if name else None
    path = reference if reference and reference.exists() else DEMO_DATA_DIR / f"{instrument_id}.csv"
    frame = pd.read_csv(path, dtype=str)
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame[frame["date"] < SYNTHETIC_FROM]


def extended_csv(instrument_id: str) -> str:
    """The real bars, then the SYNTHETIC ones, in the replay format (close-only)."""
    real = real_series(instrument_id)
    close = float(real["close"].dropna().iloc[-1])
    lines = ["date,open,high,low,close,volume"]
    for row in real.itertuples(index=False):
        values = [getattr(row, c) for c in ("open", "high", "low", "close", "volume")]
        cells = ["" if pd.isna(v) else v for v in values]
        lines.append(",".join([row.date.isoformat(), *cells]))
    for n, session in enumerate(synthetic_days(instrument_id.split("/")[0])):
        close = round(close * (1 + SYNTHETIC_MOVES[n % len(SYNTHETIC_MOVES)]), 4)
        lines.append(f"{session},,,,{close!r},")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def january_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """One run for REPORT_DATE, as on 2027-01-06 (the partition exists from that day on)."""
    with pytest.MonkeyPatch.context() as monkeypatch:

        def refuse(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a test tried to open a network connection")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        pipeline = Pipeline(tmp_path_factory.mktemp("january"), monkeypatch, "replay")
        for csv in sorted(DEMO_DATA_DIR.glob("*/*.csv")):
            instrument_id = f"{csv.parent.name}/{csv.stem}"
            if csv.parent.name in ("us", "hk", "cn", "crypto") and csv.stem not in (
                "breadth",
                "stock_bars",
            ):
                target = pipeline.replay / f"{instrument_id}.csv"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(extended_csv(instrument_id))
        shutil.copytree(DEMO_DATA_DIR / "defi", pipeline.replay / "defi")
        with partition_loading_context(effective_dt=datetime(2027, 1, 6, 12, tzinfo=UTC)):
            assert pipeline.run(REPORT_DATE).success
        yield pipeline


def report_json(pipeline: Pipeline) -> dict:
    return json.loads((pipeline.reports / f"{REPORT_DATE}.json").read_text())


def test_january_2027_publishes_the_a_share_market_marked_provisional(
    january_run: Pipeline,
) -> None:
    report = report_json(january_run)
    cn = next(m for m in report["markets"] if m["market"] == "cn")
    assert (cn["status"], cn["session_date"], cn["calendar"]) == (
        "open",
        "2027-01-05",
        "provisional",
    )
    assert {i["id"] for i in cn["instruments"]} == {
        "cn/sh000001",
        "cn/sz399001",
        "cn/sz399006",
        "cn/sh000016",
    }
    for instrument in cn["instruments"]:
        assert (instrument["session_date"], instrument["calendar"]) == (
            "2027-01-05",
            "provisional",
        ), instrument["id"]
        assert instrument["return_pct"] is not None, instrument["id"]
    others = {m["market"]: m["calendar"] for m in report["markets"] if m["market"] != "cn"}
    assert others == {"us": "published", "hk": "published", "crypto": "published"}


def test_the_figures_of_provisional_sessions_are_marked_in_the_marts(
    january_run: Pipeline,
) -> None:
    snapshot = january_run.query(
        "SELECT DISTINCT market, session_date, status, calendar FROM marts.fct_report_snapshot "
        "WHERE report_date = ? AND market IN ('cn', 'us') ORDER BY market",
        [day(REPORT_DATE)],
    )
    assert snapshot == [
        ("cn", day("2027-01-05"), "open", "provisional"),
        ("us", day("2027-01-05"), "open", "published"),
    ]
    daily = january_run.query(
        "SELECT session_date, previous_session_date, return_status, calendar "
        "FROM marts.fct_market_daily WHERE instrument_id = 'cn/sh000001' "
        "AND session_date >= '2026-12-30' ORDER BY 1"
    )
    assert daily == [
        (day("2026-12-30"), day("2026-12-29"), "ok", "published"),
        (day("2026-12-31"), day("2026-12-30"), "ok", "published"),
        (day("2027-01-04"), day("2026-12-31"), "ok", "provisional"),
        (day("2027-01-05"), day("2027-01-04"), "ok", "provisional"),
    ]


def test_the_report_says_which_calendar_dates_the_a_share_session(
    january_run: Pipeline,
) -> None:
    markdown = (january_run.reports / f"{REPORT_DATE}.md").read_text()
    html = (january_run.reports / f"{REPORT_DATE}.html").read_text()
    assert "| 2027-01-05 (provisional calendar) |" in markdown  # the A-share table
    assert "Provisional calendar: A-shares sessions are past the last session" in markdown
    assert "A-shares: open, 2027-01-05 (provisional calendar)</li>" in html


def test_the_calendar_end_warning_and_the_checks_of_the_provisional_days(
    january_run: Pipeline,
) -> None:
    report = report_json(january_run)
    checks = {c["name"]: c for c in report["checks"]}
    end = checks["raw/market_sessions:calendar_end"]
    assert (end["severity"], end["passed"]) == ("WARN", False)
    assert "calendar XSHG (A-shares) of exchange-calendars 4.13.2" in end["message"]
    assert "raise the exchange-calendars pin" in end["message"]
    assert any("calendar XSHG" in line for line in report["warnings"])
    for name in (
        "raw/cn_bars:bars_on_calendar",
        "marts/fct_report_snapshot:provisional_session",
        "marts/fct_report_snapshot:market_session",
        "marts/fct_report_snapshot:freshness",
    ):
        assert checks[name]["passed"], checks[name]


@pytest.mark.parametrize("calendar_name", ["XNYS", "XHKG", "XSHG", "24/7"])
def test_next_session_is_the_first_session_the_calendar_lists(calendar_name: str) -> None:
    """The report's next-session lookup answers what ``sessions`` lists first, also across the
    XSHG calendar's end (provisional past 2026-12-31) and over holidays."""
    day = date(2026, 9, 1)
    while day < date(2027, 3, 1):
        listed = calendars.sessions(calendar_name, day + timedelta(days=1), day + timedelta(20))
        expected = (
            None
            if listed.empty
            else (listed["session_date"].iloc[0], bool(listed["provisional"].iloc[0]))
        )
        assert calendars.next_session(calendar_name, day, 20) == expected, day
        day += timedelta(days=1)
