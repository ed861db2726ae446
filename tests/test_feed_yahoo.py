"""yfinance: its real parsing over recorded Yahoo chart bodies, with the network replaced at the
lowest seam (``YfData._make_request``), then our parser over what yfinance returned."""

import json
from datetime import date
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
import yfinance as yf
from yfinance.data import YfData
from yfinance.exceptions import YFRateLimitError

from assets.feeds import FeedError, SchemaDriftError, yahoo
from assets.universe import instruments

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
GSPC = next(i for i in instruments("us") if i.instrument_id == "us/GSPC")


class RecordedResponse:
    def __init__(self, body: dict):
        self.body, self.status_code = body, 200
        self.text = json.dumps(body)
        self.url = "https://query2.finance.yahoo.com/v8/finance/chart"

    def json(self) -> dict:
        return self.body


@pytest.fixture
def yahoo_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Serve a recorded chart body to every request yfinance makes."""
    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))
    answer: dict = {}

    def fake_request(self, url, request_method, body=None, params=None, timeout=30, data=None):
        return RecordedResponse(answer["body"])

    monkeypatch.setattr(YfData, "_make_request", fake_request)
    return answer


def test_yfinance_history_layout_and_time_zone(yahoo_answers: dict) -> None:
    yahoo_answers["body"] = json.loads(
        (FIXTURES / "chart_GSPC_2026-03-16_2026-03-20.json").read_text()
    )
    frame = yahoo.fetch_history("^GSPC", date(2026, 3, 16), date(2026, 3, 21))
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    assert str(frame.index.tz) == "America/New_York"
    assert frame.index.name == "Date"

    bars = yahoo.parse_history(frame, "us/GSPC")
    assert [d.isoformat() for d in bars["session_date"]] == [
        "2026-03-16",
        "2026-03-17",
        "2026-03-18",
        "2026-03-19",
        "2026-03-20",
    ]
    assert round(bars["close"].iloc[-1], 2) == 6506.48
    assert bars["volume"].iloc[-1] == 10025820000


def test_fetch_bars_returns_raw_table_rows(yahoo_answers: dict) -> None:
    yahoo_answers["body"] = json.loads(
        (FIXTURES / "chart_GSPC_2026-03-16_2026-03-20.json").read_text()
    )
    rows = yahoo.fetch_bars(GSPC, date(2026, 3, 16), date(2026, 3, 21))
    assert set(rows["instrument_id"]) == {"us/GSPC"}
    assert set(rows["source"]) == {"yfinance"} and not rows["is_fallback"].any()
    assert rows["session_date"].iloc[0] == date(2026, 3, 16)


def test_empty_answer_is_no_data(yahoo_answers: dict) -> None:
    yahoo_answers["body"] = json.loads((FIXTURES / "chart_GSPC_empty.json").read_text())
    rows = yahoo.fetch_bars(GSPC, date(2026, 3, 21), date(2026, 3, 23))
    assert rows.empty
    assert list(rows.columns)[:3] == ["instrument_id", "session_date", "open"]


def test_schema_drift_names_feed_instrument_and_columns() -> None:
    frame = pd.DataFrame(
        {"Open": [1.0], "High": [1.0], "Low": [1.0], "Price": [1.0], "Volume": [1]},
        index=pd.DatetimeIndex(["2026-03-20"], tz="America/New_York", name="Date"),
    )
    with pytest.raises(SchemaDriftError) as error:
        yahoo.parse_history(frame, "us/GSPC")
    message = str(error.value)
    assert "[yfinance] us/GSPC" in message and "'Close'" in message and "'Price'" in message


def test_rate_limit_is_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.loads((FIXTURES / "chart_GSPC_2026-03-16_2026-03-20.json").read_text())
    recorded = _history_from_body(body)
    sleeps: list[float] = []
    calls = iter([YFRateLimitError(), YFRateLimitError(), None])

    def flaky_history(symbol: str, start: date, end: date) -> pd.DataFrame:
        error = next(calls)
        if error:
            raise error
        return recorded

    monkeypatch.setattr(yahoo, "fetch_history", flaky_history)
    monkeypatch.setattr("assets.feeds.time.sleep", sleeps.append)
    rows = yahoo.fetch_bars(GSPC, date(2026, 3, 16), date(2026, 3, 21))
    assert len(rows) == 5
    assert sleeps == [2.0, 4.0]


def test_rate_limit_that_persists_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def always_limited(symbol: str, start: date, end: date) -> pd.DataFrame:
        raise YFRateLimitError()

    monkeypatch.setattr(yahoo, "fetch_history", always_limited)
    monkeypatch.setattr("assets.feeds.time.sleep", lambda seconds: None)
    with pytest.raises(FeedError, match=r"\[yfinance\] us/GSPC: gave up after 4 attempts"):
        yahoo.fetch_bars(GSPC, date(2026, 3, 16), date(2026, 3, 21))


def _history_from_body(body: dict) -> pd.DataFrame:
    with mock.patch.object(YfData, "_make_request", lambda *a, **k: RecordedResponse(body)):
        return yahoo.fetch_history("^GSPC", date(2026, 3, 16), date(2026, 3, 21))


RECORDED = "api-samples/yahoo/yahoo-finance2-fixture_chart-AAPL-2020-08-31-to-2020-11-07.json"


def test_recorded_yahoo_response_round_trips(reference_data: Path, yahoo_answers: dict) -> None:
    body = json.loads((reference_data / RECORDED).read_text())["response"]["bodyJson"]
    yahoo_answers["body"] = body
    frame = yahoo.fetch_history("AAPL", date(2020, 8, 31), date(2020, 11, 7))
    bars = yahoo.parse_history(frame, "us/AAPL")
    result = body["chart"]["result"][0]
    closes = result["indicators"]["quote"][0]["close"]
    assert len(bars) == len(closes)
    assert bars["close"].round(4).tolist() == pd.Series(closes).round(4).tolist()
    first_day = pd.Timestamp(result["timestamp"][0], unit="s", tz="UTC").tz_convert(
        "America/New_York"
    )
    assert bars["session_date"].iloc[0] == first_day.date()
