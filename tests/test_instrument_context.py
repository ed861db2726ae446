"""The instrument context (marts.fct_instrument_context) and the report's Levels table.

The window arithmetic itself is the dbt unit test
``instrument_context_windows_are_calendar_based_and_look_back_only``. Here: the demo report's
JSON carries the view's figures and its Levels table shows exactly those, and over the real
closes (../shared/reference-data, skipped when absent) the view's 1W, YTD, 52-week and volatility
figures equal an independent pandas computation from the reference files.
"""

import json
import math
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DEMO_DATE, REFERENCE_FILES, REFERENCE_LOOKBACK_DAYS, Pipeline

CONTEXT_KEYS = [
    "return_1w_pct",
    "return_1m_pct",
    "return_ytd_pct",
    "from_52w_high_pct",
    "from_52w_low_pct",
    "vol_20d_pct",
    "vol_percentile_1y",
]
# Levels columns after Instrument: each cell's figure and the JSON key it shows.
CELL_KEYS = [
    "close",
    "return_pct",
    "return_1w_pct",
    "return_1m_pct",
    "return_ytd_pct",
    "from_52w_high_pct",
    "from_52w_low_pct",
]
VOLATILITY_CELL = re.compile(r"^(?P<vol>\d+\.\d)%(?: \((?P<percentile>\d+)\))?$")


def demo_report(run: Pipeline) -> dict[str, Any]:
    return json.loads((run.reports / f"{DEMO_DATE}.json").read_text(encoding="utf-8"))


def levels_table(report: dict[str, Any]) -> dict[str, Any]:
    section = next(s for s in report["sections"] if s["id"] == "levels")
    return next(block for block in section["blocks"] if block["type"] == "table")


def figure(cell: str) -> float | None:
    """'+2.97%', '6,506.48' -> the number; 'n/a' -> None."""
    return None if cell == "n/a" else float(cell.replace(",", "").rstrip("%"))


def context_rows(run: Pipeline, report_date: str) -> dict[str, dict[str, Any]]:
    columns = ["instrument_id", "session_date", "close", *CONTEXT_KEYS, "closes_60"]
    rows = run.query(
        f"SELECT {', '.join(columns)} FROM marts.fct_instrument_context WHERE report_date = ?",
        [date.fromisoformat(report_date)],
    )
    return {row[0]: dict(zip(columns, row, strict=True)) for row in rows}


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def test_the_json_context_is_the_views(demo_run: Pipeline) -> None:
    """Each instrument's `context` holds the view's figures for its session, rounded; the
    60-session close series ends at the close the report shows."""
    view = context_rows(demo_run, DEMO_DATE)
    instruments = [i for m in demo_report(demo_run)["markets"] for i in m["instruments"]]
    assert len(instruments) == 14
    for row in instruments:
        context, expected = row["context"], view[row["id"]]
        for key in CONTEXT_KEYS:
            digits = 1 if key == "vol_percentile_1y" else 2
            assert context[key] == rounded(expected[key], digits), (row["id"], key)
        assert context["closes_60"] == [round(close, 2) for close in expected["closes_60"]]
        assert len(context["closes_60"]) == 60 and context["closes_60"][-1] == row["close"]
    # The demo's US history covers a year; its crypto history (300 days) does not.
    by_id = {row["id"]: row["context"] for row in instruments}
    assert by_id["us/GSPC"]["from_52w_high_pct"] <= 0 <= by_id["us/GSPC"]["from_52w_low_pct"]
    assert by_id["us/GSPC"]["vol_percentile_1y"] is not None
    assert by_id["crypto/BTC-USDT"]["from_52w_high_pct"] is None
    assert by_id["crypto/BTC-USDT"]["return_ytd_pct"] is not None


def test_levels_table_shows_the_json_context(demo_run: Pipeline) -> None:
    """One row per instrument across markets, in report order, each cell the JSON figure; the
    session date beside the name only where it is not the table's (crypto's Saturday)."""
    report = demo_report(demo_run)
    instruments = [i for m in report["markets"] for i in m["instruments"]]
    table = levels_table(report)
    assert table["columns"][0] == "Instrument" and len(table["columns"]) == 9
    assert len(table["rows"]) == len(instruments)
    for cells, row in zip(table["rows"], instruments, strict=True):
        context = row["context"]
        dated = row["session_date"] != "2026-03-20"
        assert cells[0] == (f"{row['name']} ({row['session_date']})" if dated else row["name"])
        figures = {**row, **context}
        for cell, key in zip(cells[1:8], CELL_KEYS, strict=True):
            assert figure(cell) == figures[key], (row["id"], key, cell)
        shown = VOLATILITY_CELL.match(cells[8])
        assert shown, cells[8]
        assert float(shown["vol"]) == round(context["vol_20d_pct"], 1), row["id"]
        percentile = context["vol_percentile_1y"]
        expected = None if percentile is None else f"{percentile:.0f}"
        assert shown["percentile"] == expected, row["id"]
    markdown = (demo_run.reports / f"{DEMO_DATE}.md").read_text(encoding="utf-8")
    assert "## 2. Levels\n" in markdown
    assert markdown.index("## 1. Key Insight") < markdown.index("## 2. Levels")


# --- against the real closes ----------------------------------------------------------------

AS_OF = date(2026, 3, 21)
SESSIONS = {"us/GSPC": date(2026, 3, 20), "hk/HSI": date(2026, 3, 20)}
SESSIONS["crypto/BTC-USDT"] = date(2026, 3, 21)
SESSIONS_PER_YEAR = {"us/GSPC": 252, "hk/HSI": 252, "crypto/BTC-USDT": 365}


def reference_closes(reference_data: Path, instrument_id: str) -> pd.Series:
    """The closes the run fetched (AS_OF - lookback .. AS_OF), by date."""
    frame = pd.read_csv(reference_data / REFERENCE_FILES[instrument_id])
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    first = AS_OF - timedelta(days=REFERENCE_LOOKBACK_DAYS)
    kept = frame[(frame["date"] >= first) & (frame["date"] <= AS_OF)]
    return kept.set_index("date")["close"].dropna().sort_index()


def last_close_on_or_before(closes: pd.Series, day: date) -> float:
    return float(closes[closes.index <= day].iloc[-1])


def independent_context(closes: pd.Series, session: date, per_year: int) -> dict[str, float]:
    """The definitions of docs/facts.md, computed with pandas from the file."""
    close = float(closes[session])
    year = closes[(closes.index > session - timedelta(weeks=52)) & (closes.index <= session)]
    log_returns = np.log(closes[closes.index <= session]).diff().dropna()
    vols = log_returns.rolling(20).std(ddof=1).dropna() * math.sqrt(per_year) * 100
    past_year = vols.iloc[-per_year:]
    week_base = last_close_on_or_before(closes, session - timedelta(days=7))
    year_base = last_close_on_or_before(closes, date(session.year - 1, 12, 31))
    return {
        "return_1w_pct": 100 * (close / week_base - 1),
        "return_ytd_pct": 100 * (close / year_base - 1),
        "from_52w_high_pct": 100 * (close / year.max() - 1),
        "from_52w_low_pct": 100 * (close / year.min() - 1),
        "vol_20d_pct": float(vols.iloc[-1]),
        "vol_percentile_1y": 100 * float((past_year <= vols.iloc[-1]).sum()) / per_year,
    }


@pytest.mark.parametrize("instrument_id", sorted(SESSIONS))
def test_context_equals_an_independent_computation_over_real_closes(
    reference_run: Pipeline, reference_data: Path, instrument_id: str
) -> None:
    row = context_rows(reference_run, DEMO_DATE)[instrument_id]
    session = SESSIONS[instrument_id]
    assert row["session_date"] == session
    closes = reference_closes(reference_data, instrument_id)
    expected = independent_context(closes, session, SESSIONS_PER_YEAR[instrument_id])
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (instrument_id, key)
    assert row["closes_60"] == pytest.approx(closes[closes.index <= session].iloc[-60:].tolist())
