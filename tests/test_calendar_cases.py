"""The date rule on hand-made replays: holidays of one market, weekends, gaps and late feeds.

Each case writes a small replay directory (a few instruments; the others are simply missing,
hence unavailable) whose closes sit on the real exchange sessions of exchange-calendars, runs
the pipeline once over a range of report dates, and reads marts.fct_report_snapshot,
marts.fct_market_daily and the published JSON.
"""

import json
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import exchange_calendars as xcals
import pytest

from tests.conftest import Pipeline

CALENDARS = {"us": "XNYS", "hk": "XHKG", "cn": "XSHG", "crypto": "24/7"}
HISTORY_START = date(2025, 10, 1)

Series = dict[date, float]
# design.md: an ERROR blocks the report *for the dates it affects*; the other dates of the run
# must still be published (docs/quality-gate.md says so too).


def sessions(market: str, first: date, last: date) -> list[date]:
    """The market's sessions ``first..last`` straight from exchange-calendars."""
    calendar = xcals.get_calendar(CALENDARS[market], start="2025-01-01")
    return [s.date() for s in calendar.sessions_in_range(first.isoformat(), last.isoformat())]


def make_series(market: str, last: date, base: float, skip: Iterable[date] = ()) -> Series:
    """Closes on every session from HISTORY_START to ``last`` but ``skip``, moving < 1 % a day."""
    closes, close = {}, base
    for n, session in enumerate(sessions(market, HISTORY_START, last)):
        close = round(close * (1 + 0.002 * ((n * 7) % 9 - 4)), 4)
        if session not in skip:
            closes[session] = close
    return closes


def write_replay(replay: Path, series: dict[str, Series]) -> None:
    for instrument_id, closes in series.items():
        path = replay / f"{instrument_id}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["date,open,high,low,close,volume"]
        lines += [f"{session},,,,{close!r}," for session, close in sorted(closes.items())]
        path.write_text("\n".join(lines) + "\n")


@contextmanager
def replay_case(
    tmp_path_factory: pytest.TempPathFactory, series: dict[str, Series]
) -> Iterator[Pipeline]:
    """A pipeline over a replay of ``series`` in a fresh folder, with the network refused."""
    with pytest.MonkeyPatch.context() as monkeypatch:

        def refuse(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a test tried to open a network connection")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        pipeline = Pipeline(tmp_path_factory.mktemp("calendar"), monkeypatch, "replay")
        write_replay(pipeline.replay, series)
        yield pipeline


def day(text: str) -> date:
    return date.fromisoformat(text)


def snapshot(pipeline: Pipeline, report_date: str) -> dict[str, dict]:
    columns = [
        "instrument_id",
        "market",
        "expected_session_date",
        "session_date",
        "return_pct",
        "return_status",
        "status",
        "sessions_behind",
        "market_session_date",
        "market_status",
    ]
    rows = pipeline.query(
        f"SELECT {', '.join(columns)} FROM marts.fct_report_snapshot WHERE report_date = ?",
        [day(report_date)],
    )
    return {row[0]: dict(zip(columns, row, strict=True)) for row in rows}


def daily(pipeline: Pipeline, instrument_id: str, session: str) -> dict:
    columns = ["previous_session_date", "close", "return_pct", "return_status"]
    rows = pipeline.query(
        f"SELECT {', '.join(columns)} FROM marts.fct_market_daily "
        "WHERE instrument_id = ? AND session_date = ?",
        [instrument_id, day(session)],
    )
    assert len(rows) == 1, (instrument_id, session)
    return dict(zip(columns, rows[0], strict=True))


def published(pipeline: Pipeline, report_date: str) -> dict | None:
    path = pipeline.reports / f"{report_date}.json"
    return json.loads(path.read_text()) if path.exists() else None


def markets_of(report: dict) -> dict[str, tuple[str, str]]:
    return {m["market"]: (m["status"], m["session_date"]) for m in report["markets"]}


def instruments_of(report: dict) -> dict[str, dict]:
    return {i["id"]: i for m in report["markets"] for i in m["instruments"]}


def pct(closes: Series, session: str, previous: str) -> float:
    return 100 * (closes[day(session)] / closes[day(previous)] - 1)


# ---------------------------------------------------------------------------------------------
# Holidays of one market, weekends, an off-calendar row: one run over 2026-01-19..2026-04-09.

HOLIDAYS_LAST = date(2026, 4, 10)
OFF_CALENDAR_DAY = date(2025, 11, 15)  # a Saturday, long before the window the gate reads
HOLIDAYS = {
    "us/GSPC": make_series("us", HOLIDAYS_LAST, 6000.0),
    "us/DJI": make_series("us", HOLIDAYS_LAST, 45000.0),
    "hk/HSI": make_series("hk", HOLIDAYS_LAST, 25000.0),
    "hk/HSCEI": make_series("hk", HOLIDAYS_LAST, 8500.0),
    "cn/sh000001": make_series("cn", HOLIDAYS_LAST, 4000.0),
    "crypto/BTC-USDT": make_series("crypto", HOLIDAYS_LAST, 70000.0),
}
HOLIDAYS["us/DJI"][OFF_CALENDAR_DAY] = 45555.5


@pytest.fixture(scope="module")
def holidays_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with replay_case(tmp_path_factory, HOLIDAYS) as pipeline:
        assert pipeline.run("2026-01-19", "2026-04-09").success
        yield pipeline


def test_calendar_facts_used_by_these_cases() -> None:
    """The holidays below are the library's, not hand-written lists."""
    assert day("2026-04-06") not in sessions("hk", day("2026-04-01"), day("2026-04-10"))
    assert day("2026-04-07") not in sessions("hk", day("2026-04-01"), day("2026-04-10"))
    assert day("2026-04-03") not in sessions("hk", day("2026-04-01"), day("2026-04-10"))
    assert day("2026-04-03") not in sessions("us", day("2026-04-01"), day("2026-04-10"))
    assert day("2026-04-06") in sessions("us", day("2026-04-01"), day("2026-04-10"))
    assert day("2026-04-06") not in sessions("cn", day("2026-04-01"), day("2026-04-10"))
    assert day("2026-01-19") not in sessions("us", day("2026-01-12"), day("2026-01-23"))
    assert day("2026-01-19") in sessions("hk", day("2026-01-12"), day("2026-01-23"))
    assert day("2026-01-19") in sessions("cn", day("2026-01-12"), day("2026-01-23"))


def test_hong_kong_holiday_while_the_us_trades(holidays_run: Pipeline) -> None:
    # Easter Monday 2026-04-06: New York trades, Hong Kong has been closed since Good Friday
    # (its last session Thursday 04-02), Shanghai is closed for Ching Ming (last session 04-03).
    rows = snapshot(holidays_run, "2026-04-07")
    assert (rows["us/GSPC"]["status"], rows["us/GSPC"]["session_date"]) == (
        "open",
        day("2026-04-06"),
    )
    assert (rows["hk/HSI"]["status"], rows["hk/HSI"]["session_date"]) == (
        "closed",
        day("2026-04-02"),
    )
    assert rows["hk/HSI"]["market_status"] == "closed"
    assert rows["hk/HSI"]["sessions_behind"] == 0
    assert (rows["cn/sh000001"]["status"], rows["cn/sh000001"]["session_date"]) == (
        "closed",
        day("2026-04-03"),
    )
    # Monday's US return is against Thursday (Good Friday closed New York too).
    us = daily(holidays_run, "us/GSPC", "2026-04-06")
    assert us["previous_session_date"] == day("2026-04-02")
    assert us["return_pct"] == pytest.approx(pct(HOLIDAYS["us/GSPC"], "2026-04-06", "2026-04-02"))

    report = published(holidays_run, "2026-04-07")
    assert markets_of(report)["us"] == ("open", "2026-04-06")
    assert markets_of(report)["hk"] == ("closed", "2026-04-02")
    assert markets_of(report)["cn"] == ("closed", "2026-04-03")
    # Tuesday 04-07 is still a Hong Kong holiday (Ching Ming observed); Shanghai reopens.
    report = published(holidays_run, "2026-04-08")
    assert markets_of(report)["us"] == ("open", "2026-04-07")
    assert markets_of(report)["hk"] == ("closed", "2026-04-02")
    assert markets_of(report)["cn"] == ("open", "2026-04-07")
    # Hong Kong's first session after the holidays is compared with the last one before them.
    hk = daily(holidays_run, "hk/HSI", "2026-04-08")
    assert hk["previous_session_date"] == day("2026-04-02")
    assert hk["return_status"] == "ok"
    assert hk["return_pct"] == pytest.approx(pct(HOLIDAYS["hk/HSI"], "2026-04-08", "2026-04-02"))
    report = published(holidays_run, "2026-04-09")
    assert markets_of(report)["hk"] == ("open", "2026-04-08")
    assert instruments_of(report)["hk/HSI"]["return_pct"] == round(hk["return_pct"], 2)


def test_us_holiday_while_asia_trades(holidays_run: Pipeline) -> None:
    # Martin Luther King Jr. Day 2026-01-19: New York closed, Hong Kong and Shanghai trade.
    report = published(holidays_run, "2026-01-20")
    assert markets_of(report)["us"] == ("closed", "2026-01-16")
    assert markets_of(report)["hk"] == ("open", "2026-01-19")
    assert markets_of(report)["cn"] == ("open", "2026-01-19")
    rows = instruments_of(report)
    assert rows["us/GSPC"]["status"] == "closed"
    us_friday = daily(holidays_run, "us/GSPC", "2026-01-16")
    assert rows["us/GSPC"]["return_pct"] == round(us_friday["return_pct"], 2)
    # Tuesday's US return is against Friday, never against the holiday.
    tuesday = daily(holidays_run, "us/GSPC", "2026-01-20")
    assert tuesday["previous_session_date"] == day("2026-01-16")
    assert tuesday["return_pct"] == pytest.approx(
        pct(HOLIDAYS["us/GSPC"], "2026-01-20", "2026-01-16")
    )
    assert markets_of(published(holidays_run, "2026-01-21"))["us"] == ("open", "2026-01-20")
    # The chain pairs Hong Kong's Tuesday with the US session that closed before it opened:
    # Friday's, as Monday was a holiday in New York.
    chain = holidays_run.query(
        "SELECT market, session_date, lead_session_date FROM marts.fct_transmission_chain "
        "WHERE report_date = ? ORDER BY market",
        [day("2026-01-21")],
    )
    by_market = {row[0]: row[1:] for row in chain}
    assert by_market["hk"] == (day("2026-01-20"), day("2026-01-16"))
    assert by_market["us"][0] == day("2026-01-16")


def test_weekend_reports_show_friday_sessions_and_the_crypto_day_before(
    holidays_run: Pipeline,
) -> None:
    sunday = published(holidays_run, "2026-01-25")
    assert markets_of(sunday)["us"] == ("closed", "2026-01-23")
    assert markets_of(sunday)["hk"] == ("closed", "2026-01-23")
    assert markets_of(sunday)["cn"] == ("closed", "2026-01-23")
    assert markets_of(sunday)["crypto"] == ("open", "2026-01-24")
    btc = instruments_of(sunday)["crypto/BTC-USDT"]
    assert btc["return_pct"] == round(
        pct(HOLIDAYS["crypto/BTC-USDT"], "2026-01-24", "2026-01-23"), 2
    )
    monday = published(holidays_run, "2026-01-26")
    assert markets_of(monday)["us"] == ("closed", "2026-01-23")
    assert markets_of(monday)["crypto"] == ("open", "2026-01-25")
    # Friday's figures repeat unchanged over the weekend; only the status says closed.
    saturday = published(holidays_run, "2026-01-24")
    for instrument_id in ("us/GSPC", "hk/HSI", "cn/sh000001"):
        friday = instruments_of(saturday)[instrument_id]
        assert friday["status"] == "open"
        for report in (sunday, monday):
            repeated = instruments_of(report)[instrument_id]
            assert {**repeated, "status": "open"} == friday, instrument_id
            assert repeated["status"] == "closed"
    rows = snapshot(holidays_run, "2026-01-25")
    assert rows["us/GSPC"]["expected_session_date"] == day("2026-01-23")
    assert {rows[i]["sessions_behind"] for i in HOLIDAYS} == {0}
    assert rows["us/IXIC"]["status"] == "unavailable"  # no file for it in this replay


def test_a_row_on_a_day_without_a_session_is_off_calendar(holidays_run: Pipeline) -> None:
    saturday = daily(holidays_run, "us/DJI", OFF_CALENDAR_DAY.isoformat())
    assert saturday["return_status"] == "off_calendar"
    assert saturday["return_pct"] is None
    # The next session's return skips the stray row: Monday against Friday.
    monday = daily(holidays_run, "us/DJI", "2025-11-17")
    assert monday["previous_session_date"] == day("2025-11-14")
    assert monday["return_pct"] == pytest.approx(
        pct(HOLIDAYS["us/DJI"], "2025-11-17", "2025-11-14")
    )


# ---------------------------------------------------------------------------------------------
# One instrument misses one session; the rest of its market has it.

MISSING_SESSION = date(2026, 3, 11)  # a Wednesday, a session in New York
GAP = {
    "us/GSPC": make_series("us", date(2026, 3, 20), 6000.0),
    "us/DJI": make_series("us", date(2026, 3, 20), 45000.0, skip=[MISSING_SESSION]),
    "hk/HSI": make_series("hk", date(2026, 3, 20), 25000.0),
    "crypto/BTC-USDT": make_series("crypto", date(2026, 3, 20), 70000.0),
}


@pytest.fixture(scope="module")
def gap_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with replay_case(tmp_path_factory, GAP) as pipeline:
        assert not pipeline.run("2026-03-12", "2026-03-13", raise_on_error=False).success
        yield pipeline


def test_a_session_missing_in_one_instrument(gap_run: Pipeline) -> None:
    rows = snapshot(gap_run, "2026-03-12")
    dji, gspc = rows["us/DJI"], rows["us/GSPC"]
    assert (dji["status"], dji["session_date"], dji["expected_session_date"]) == (
        "stale",
        day("2026-03-10"),
        MISSING_SESSION,
    )
    assert dji["sessions_behind"] == 1
    assert (gspc["status"], gspc["session_date"]) == ("open", MISSING_SESSION)
    assert (gspc["market_status"], gspc["market_session_date"]) == ("stale", MISSING_SESSION)
    assert (rows["hk/HSI"]["status"], rows["hk/HSI"]["market_status"]) == ("open", "open")
    assert rows["crypto/BTC-USDT"]["market_status"] == "open"
    # A stale market fails the gate: that date is not published.
    assert published(gap_run, "2026-03-12") is None


def test_the_return_after_a_missing_session_is_not_taken_across_the_gap(gap_run: Pipeline) -> None:
    thursday = daily(gap_run, "us/DJI", "2026-03-12")
    assert thursday["previous_session_date"] == MISSING_SESSION
    assert (thursday["return_status"], thursday["return_pct"]) == ("no_previous_close", None)
    rows = snapshot(gap_run, "2026-03-13")
    dji, gspc = rows["us/DJI"], rows["us/GSPC"]
    assert (dji["status"], dji["session_date"], dji["sessions_behind"]) == (
        "open",
        day("2026-03-12"),
        0,
    )
    assert (dji["return_status"], dji["return_pct"]) == ("no_previous_close", None)
    assert (gspc["market_status"], gspc["market_session_date"]) == ("open", day("2026-03-12"))
    assert gspc["return_pct"] == pytest.approx(pct(GAP["us/GSPC"], "2026-03-12", "2026-03-11"))


def test_the_date_after_the_gap_is_published_in_the_same_run(gap_run: Pipeline) -> None:
    report = published(gap_run, "2026-03-13")
    assert report is not None
    assert markets_of(report)["us"] == ("open", "2026-03-12")
    rows = instruments_of(report)
    assert (rows["us/DJI"]["status"], rows["us/DJI"]["return_pct"]) == ("open", None)


# ---------------------------------------------------------------------------------------------
# A whole market's data ends early (a late feed): stale, with the sessions it lacks counted.

CN_LAST = date(2026, 3, 17)  # a Tuesday
EARLY_END = {
    "us/GSPC": make_series("us", date(2026, 3, 22), 6000.0),
    "cn/sh000001": make_series("cn", CN_LAST, 4000.0),
    "cn/sz399001": make_series("cn", CN_LAST, 14000.0),
    "crypto/BTC-USDT": make_series("crypto", date(2026, 3, 22), 70000.0),
}


@pytest.fixture(scope="module")
def early_end_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with replay_case(tmp_path_factory, EARLY_END) as pipeline:
        assert not pipeline.run("2026-03-16", "2026-03-22", raise_on_error=False).success
        yield pipeline


@pytest.mark.parametrize(
    ("report_date", "expected_session", "behind"),
    [
        ("2026-03-18", "2026-03-17", 0),
        ("2026-03-19", "2026-03-18", 1),
        ("2026-03-20", "2026-03-19", 2),
        ("2026-03-21", "2026-03-20", 3),
        ("2026-03-22", "2026-03-20", 3),  # Sunday: still three sessions behind, not four
    ],
)
def test_a_market_whose_data_ends_early_is_stale(
    early_end_run: Pipeline, report_date: str, expected_session: str, behind: int
) -> None:
    rows = snapshot(early_end_run, report_date)
    for instrument_id in ("cn/sh000001", "cn/sz399001"):
        row = rows[instrument_id]
        assert row["session_date"] == CN_LAST, instrument_id
        assert row["expected_session_date"] == day(expected_session), instrument_id
        assert row["sessions_behind"] == behind, instrument_id
        status = "stale" if behind else "open"
        assert (row["status"], row["market_status"]) == (status, status), instrument_id
        assert row["market_session_date"] == CN_LAST
    assert rows["cn/sz399006"]["status"] == "unavailable"  # no file: not stale, unavailable
    assert rows["us/GSPC"]["market_status"] in ("open", "closed")
    assert rows["us/GSPC"]["sessions_behind"] == 0
    if behind:
        assert published(early_end_run, report_date) is None  # a stale market fails the gate


def test_divergence_of_a_stale_market_keeps_its_own_last_session(early_end_run: Pipeline) -> None:
    rows = early_end_run.query(
        "SELECT left_session_date, right_session_date FROM marts.fct_cross_market_divergence "
        "WHERE report_date = ? AND left_id = 'cn/sh000001' AND right_id = 'crypto/BTC-USDT'",
        [day("2026-03-22")],
    )
    assert rows == [(CN_LAST, day("2026-03-21"))]


def test_dates_before_the_feed_ended_are_published_in_the_same_run(
    early_end_run: Pipeline,
) -> None:
    for report_date in ("2026-03-16", "2026-03-17", "2026-03-18"):
        assert published(early_end_run, report_date) is not None, report_date
    assert markets_of(published(early_end_run, "2026-03-18"))["cn"] == ("open", "2026-03-17")
