"""The facts against real closes (../shared/reference-data), replayed over years in one run.

The reference files are never copied into the repository: each test run links them into a
replay directory under a temporary folder. Every return is re-computed here independently, with
pandas and exchange-calendars directly, and compared with what dbt computed.
"""

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from market_intel.settings import SEEDS_DIR
from tests.conftest import (
    DEMO_DATE,
    REFERENCE_FILES,
    REFERENCE_LOOKBACK_DAYS,
    Pipeline,
)

REPORT_DATE = DEMO_DATE
AS_OF = date(2026, 3, 21)
# The run (reference_run, conftest) replays REFERENCE_FILES over years: the raw feeds fetch
# sessions from AS_OF - LOOKBACK_DAYS on.
LOOKBACK_DAYS = REFERENCE_LOOKBACK_DAYS
REPLAY_FILES = REFERENCE_FILES
CALENDARS = {"us": "XNYS", "hk": "XHKG", "cn": "XSHG", "crypto": "24/7"}

# The true moves of the sessions the 2026-03-22 report covers (design.md), in per cent.
EQUITY_SESSION = date(2026, 3, 20)
CRYPTO_DAY = date(2026, 3, 21)
EXPECTED_RETURNS = {
    "us/GSPC": -1.51,
    "us/IXIC": -2.01,
    "us/DJI": -0.96,
    "hk/HSI": -0.88,
    "hk/HSCEI": -1.40,
    "hk/HSTECH": -2.48,
    "cn/sh000001": -1.24,
    "cn/sz399001": -0.25,
    "cn/sz399006": 1.30,
    "crypto/BTC-USDT": -2.26,
    "crypto/ETH-USDT": -2.86,
}


def expected_session(instrument_id: str) -> date:
    return CRYPTO_DAY if instrument_id.startswith("crypto/") else EQUITY_SESSION


def reference_series(reference_data: Path, instrument_id: str) -> pd.DataFrame:
    """The reference file's rows in the sessions the run fetched, indexed by date."""
    frame = pd.read_csv(reference_data / REPLAY_FILES[instrument_id])
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    first = AS_OF - timedelta(days=LOOKBACK_DAYS)
    return frame[(frame["date"] >= first) & (frame["date"] <= AS_OF)].set_index("date")


def calendar_sessions(instrument_id: str) -> list[date]:
    """The exchange's sessions over the fetched range, straight from exchange-calendars."""
    name = CALENDARS[instrument_id.split("/")[0]]
    first = AS_OF - timedelta(days=LOOKBACK_DAYS)
    calendar = xcals.get_calendar(name, start=(first - timedelta(days=30)).isoformat())
    return [s.date() for s in calendar.sessions_in_range(first.isoformat(), AS_OF.isoformat())]


def independent_returns(series: pd.DataFrame, sessions: list[date]) -> pd.DataFrame:
    """Per row: previous calendar session, return in per cent where both sessions have a row."""
    previous = dict(zip(sessions[1:], sessions[:-1], strict=True))
    closes = series["close"]
    rows = []
    for day, close in closes.items():
        if day not in previous and day != sessions[0]:
            status, prev_day, value = "off_calendar", None, np.nan
        elif day not in previous or previous[day] not in closes.index:
            status, prev_day, value = "no_previous_close", previous.get(day), np.nan
        else:
            prev_day = previous[day]
            status, value = "ok", 100 * (close / closes[prev_day] - 1)
        rows.append((day, prev_day, value, status))
    return pd.DataFrame(
        rows, columns=["session_date", "previous_session_date", "return_pct", "return_status"]
    ).set_index("session_date")


def configured_pairs() -> list[tuple[str, str]]:
    with open(SEEDS_DIR / "divergence_pairs.csv", newline="", encoding="utf-8") as handle:
        return [(row["left_id"], row["right_id"]) for row in csv.DictReader(handle)]


def snapshot_rows(run: Pipeline) -> dict[str, dict]:
    columns = ["instrument_id", "session_date", "return_pct", "status", "market_status"]
    rows = run.query(
        f"SELECT {', '.join(columns)} FROM marts.fct_report_snapshot WHERE report_date = ?",
        [date.fromisoformat(REPORT_DATE)],
    )
    return {row[0]: dict(zip(columns, row, strict=True)) for row in rows}


def test_snapshot_shows_the_true_moves_of_the_covered_sessions(reference_run: Pipeline) -> None:
    rows = snapshot_rows(reference_run)
    for instrument_id, expected in EXPECTED_RETURNS.items():
        row = rows[instrument_id]
        assert row["session_date"] == expected_session(instrument_id), instrument_id
        assert round(row["return_pct"], 2) == expected, instrument_id
        status = "open" if instrument_id.startswith("crypto/") else "closed"
        assert (row["status"], row["market_status"]) == (status, status), instrument_id
    # No file in the replay: reported as unavailable, not invented.
    for instrument_id in ("us/IWM", "us/QQQ", "cn/sh000016"):
        assert rows[instrument_id]["status"] == "unavailable", instrument_id


def test_published_json_carries_the_true_moves(reference_run: Pipeline) -> None:
    report = json.loads((reference_run.reports / f"{REPORT_DATE}.json").read_text())
    assert report["report_date"] == REPORT_DATE
    by_id = {i["id"]: i for market in report["markets"] for i in market["instruments"]}
    for instrument_id, expected in EXPECTED_RETURNS.items():
        row = by_id[instrument_id]
        assert row["return_pct"] == expected, instrument_id
        assert row["session_date"] == expected_session(instrument_id).isoformat(), instrument_id
    sessions = {m["market"]: (m["status"], m["session_date"]) for m in report["markets"]}
    assert sessions["us"] == sessions["hk"] == sessions["cn"] == ("closed", "2026-03-20")
    assert sessions["crypto"] == ("open", "2026-03-21")


def test_configured_divergences_are_differences_of_the_returns(reference_run: Pipeline) -> None:
    returns = {k: v["return_pct"] for k, v in snapshot_rows(reference_run).items()}
    columns = [
        "left_id",
        "right_id",
        "left_session_date",
        "right_session_date",
        "left_return_pct",
        "right_return_pct",
        "spread_bps",
    ]
    found = {
        (row[0], row[1]): dict(zip(columns, row, strict=True))
        for row in reference_run.query(
            f"SELECT {', '.join(columns)} FROM marts.fct_cross_market_divergence "
            "WHERE report_date = ? AND configured",
            [date.fromisoformat(REPORT_DATE)],
        )
    }
    compared = 0
    for left, right in configured_pairs():
        if left not in EXPECTED_RETURNS or right not in EXPECTED_RETURNS:
            continue  # e.g. a DeFi series: no DeFi file in this replay
        row = found[(left, right)]
        assert row["left_session_date"] == expected_session(left)
        assert row["right_session_date"] == expected_session(right)
        assert row["left_return_pct"] == pytest.approx(returns[left], abs=1e-9)
        assert row["right_return_pct"] == pytest.approx(returns[right], abs=1e-9)
        spread = 100 * (returns[left] - returns[right])
        assert row["spread_bps"] == pytest.approx(spread, abs=1e-6)
        figures = 100 * (EXPECTED_RETURNS[left] - EXPECTED_RETURNS[right])
        assert row["spread_bps"] == pytest.approx(figures, abs=1.0)  # within rounding of 2 dp
        compared += 1
    assert compared >= 4


@pytest.mark.parametrize("instrument_id", sorted(REPLAY_FILES))
def test_raw_and_daily_facts_match_the_reference_series(
    reference_run: Pipeline, reference_data: Path, instrument_id: str
) -> None:
    series = reference_series(reference_data, instrument_id)
    market = instrument_id.split("/")[0]

    raw = pd.DataFrame(
        reference_run.query(
            f"SELECT session_date, open, high, low, close, volume FROM raw.{market}_bars "
            "WHERE instrument_id = ? ORDER BY session_date",
            [instrument_id],
        ),
        columns=["date", "open", "high", "low", "close", "volume"],
    ).set_index("date")
    # The real series lands unchanged: every row, every figure, bit for bit.
    assert list(raw.index) == list(series.index)
    for column in ("open", "high", "low", "close", "volume"):
        pd.testing.assert_series_equal(
            raw[column].astype("float64"), series[column].astype("float64"), check_names=False
        )

    daily = pd.DataFrame(
        reference_run.query(
            "SELECT session_date, previous_session_date, return_pct, return_status "
            "FROM marts.fct_market_daily WHERE instrument_id = ? ORDER BY session_date",
            [instrument_id],
        ),
        columns=["session_date", "previous_session_date", "return_pct", "return_status"],
    ).set_index("session_date")
    expected = independent_returns(series, calendar_sessions(instrument_id))
    assert list(daily.index) == list(expected.index)
    assert list(daily["return_status"]) == list(expected["return_status"])
    computed = expected["return_status"] == "ok"
    assert (daily["return_pct"].isna() == ~computed).all()
    difference = (daily["return_pct"] - expected["return_pct"])[computed].abs()
    assert difference.max() < 1e-9, difference.idxmax()
    known = expected["previous_session_date"].notna()
    assert list(daily.loc[known, "previous_session_date"]) == list(
        expected.loc[known, "previous_session_date"]
    )
