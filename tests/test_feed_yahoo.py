"""yfinance: its real cookie, crumb, consent, retry and chart parsing over recorded Yahoo chart
bodies, with the network replaced at curl_cffi's ``Session.request`` (``tests/transports/yahoo``),
then our classification of what yfinance raised and our parser over what it returned."""

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yfinance as yf
from yfinance.data import SingletonMeta, YfData

from market_intel.feeds import FeedError, RefusedError, SchemaDriftError, yahoo
from market_intel.sources import RawSource
from market_intel.universe import instruments, markets
from tests.transports.failures import RETRY_AFTER_SECONDS, Failure
from tests.transports.yahoo import CONSENT_URL, CRUMB, FakeYahoo

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
GSPC = next(i for i in instruments("us") if i.instrument_id == "us/GSPC")
WEEK = (date(2026, 3, 16), date(2026, 3, 21))
GSPC_BODY = json.loads((FIXTURES / "chart_GSPC_2026-03-16_2026-03-20.json").read_text())
EMPTY_BODY = json.loads((FIXTURES / "chart_GSPC_empty.json").read_text())


@pytest.fixture
def fresh_yfinance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """yfinance keeps its session, cookie, crumb and answers process-wide (a singleton and an
    lru_cache); each test starts from none of them, with its caches in a temporary folder."""
    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))
    monkeypatch.delitem(SingletonMeta._instances, YfData, raising=False)
    YfData.cache_get.cache_clear()
    yahoo.yahoo_session.cache_clear()


@pytest.fixture
def yahoo_site(fresh_yfinance, monkeypatch: pytest.MonkeyPatch) -> FakeYahoo:
    return FakeYahoo({"^GSPC": GSPC_BODY}).install(monkeypatch)


def no_sleep_expected(seconds: float) -> None:
    raise AssertionError(f"unexpected retry sleep of {seconds}s")


def test_yfinance_history_layout_and_time_zone(yahoo_site: FakeYahoo) -> None:
    frame = yahoo.fetch_history("^GSPC", *WEEK)
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


def test_fetch_bars_returns_raw_table_rows(yahoo_site: FakeYahoo) -> None:
    rows = yahoo.fetch_bars(GSPC, *WEEK, sleep=no_sleep_expected)
    assert set(rows["instrument_id"]) == {"us/GSPC"}
    assert set(rows["source"]) == {"yfinance"} and not rows["is_fallback"].any()
    assert rows["session_date"].iloc[0] == date(2026, 3, 16)


def test_yfinance_fetches_a_crumb_and_asks_for_the_range(yahoo_site: FakeYahoo) -> None:
    yahoo.fetch_bars(GSPC, *WEEK, sleep=no_sleep_expected)
    assert any(url.endswith("/v1/test/getcrumb") for _, url, _ in yahoo_site.requests)
    (asked,) = yahoo_site.bars_requests()
    assert asked["crumb"] == CRUMB and asked["interval"] == "1d"
    # start and end are midnights in New York, the exchange's zone (from the time-zone probe).
    assert pd.Timestamp(asked["period1"], unit="s", tz="UTC") == pd.Timestamp(
        "2026-03-16", tz="America/New_York"
    )
    assert pd.Timestamp(asked["period2"], unit="s", tz="UTC") == pd.Timestamp(
        "2026-03-21", tz="America/New_York"
    )


def test_empty_answer_is_no_data(fresh_yfinance, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeYahoo({"^GSPC": EMPTY_BODY}).install(monkeypatch)
    rows = yahoo.fetch_bars(GSPC, date(2026, 3, 21), date(2026, 3, 23), sleep=no_sleep_expected)
    assert rows.empty
    assert list(rows.columns)[:3] == ["instrument_id", "session_date", "open"]


def test_range_without_sessions_is_no_data(yahoo_site: FakeYahoo) -> None:
    # A weekend: Yahoo answers the chart without bars, yfinance raises, and that is no data.
    rows = yahoo.fetch_bars(GSPC, date(2026, 3, 21), date(2026, 3, 23), sleep=no_sleep_expected)
    assert rows.empty and len(yahoo_site.bars_requests()) == 1


def test_schema_drift_names_feed_instrument_and_columns() -> None:
    frame = pd.DataFrame(
        {"Open": [1.0], "High": [1.0], "Low": [1.0], "Price": [1.0], "Volume": [1]},
        index=pd.DatetimeIndex(["2026-03-20"], tz="America/New_York", name="Date"),
    )
    with pytest.raises(SchemaDriftError) as error:
        yahoo.parse_history(frame, "us/GSPC")
    message = str(error.value)
    assert "[yfinance] us/GSPC" in message and "'Close'" in message and "'Price'" in message


def test_rate_limit_is_retried_with_backoff(yahoo_site: FakeYahoo) -> None:
    # Two attempts rate limited (yfinance itself asks twice per attempt), the third served.
    yahoo_site.failures = [Failure.RATE_LIMITED] * 4
    sleeps: list[float] = []
    rows = yahoo.fetch_bars(GSPC, *WEEK, sleep=sleeps.append)
    assert len(rows) == 5
    assert sleeps == [2.0, 4.0]
    assert len(yahoo_site.bars_requests()) == 5


def test_rate_limit_that_persists_is_a_clear_error(yahoo_site: FakeYahoo) -> None:
    yahoo_site.failures = [Failure.RATE_LIMITED] * 8
    with pytest.raises(FeedError, match=r"\[yfinance\] us/GSPC: gave up after 4 attempts"):
        yahoo.fetch_bars(GSPC, *WEEK, sleep=lambda seconds: None)


# --- every failure kind ----------------------------------------------------------------------

# Each kind served to the first two bars requests. A network failure or a bad 200 answer fails
# one attempt each time; an HTTP status is seen twice by one attempt (yfinance retries it once
# with its other cookie strategy), so only one attempt fails.
RETRIED = {
    Failure.TIMEOUT: [2.0, 4.0],
    Failure.RESET: [2.0, 4.0],
    Failure.TRUNCATED: [2.0, 4.0],
    Failure.GARBLED: [2.0, 4.0],
    Failure.HTML: [2.0, 4.0],
    Failure.RATE_LIMITED: [2.0],
    Failure.RATE_LIMITED_RETRY_AFTER: [float(RETRY_AFTER_SECONDS)],
    Failure.SERVER_ERROR: [2.0],
}
REFUSED = {
    Failure.REFUSED_451: "451 Unavailable For Legal Reasons",
    Failure.REFUSED_403: "403 Forbidden",
}


@pytest.mark.parametrize("failure", list(RETRIED), ids=str)
def test_transient_failure_kind_is_retried(yahoo_site: FakeYahoo, failure: Failure) -> None:
    yahoo_site.failures = [failure, failure]
    sleeps: list[float] = []
    rows = yahoo.fetch_bars(GSPC, *WEEK, sleep=sleeps.append)
    assert sleeps == RETRIED[failure]
    assert len(rows) == 5 and round(rows["close"].iloc[-1], 2) == 6506.48


@pytest.mark.parametrize("failure", list(RETRIED), ids=str)
def test_transient_failure_kind_that_persists_is_a_clear_error(
    yahoo_site: FakeYahoo, failure: Failure
) -> None:
    yahoo_site.failures = [failure] * 8
    with pytest.raises(FeedError) as caught:
        yahoo.fetch_bars(GSPC, *WEEK, sleep=lambda seconds: None)
    message = str(caught.value)
    assert message.startswith("[yfinance] us/GSPC: gave up after 4 attempts: ")
    assert "^GSPC daily bars 2026-03-16..2026-03-21 (end excluded)" in message


@pytest.mark.parametrize("failure", list(REFUSED), ids=str)
def test_refusal_is_a_clear_error_naming_range_and_answer(
    yahoo_site: FakeYahoo, failure: Failure
) -> None:
    yahoo_site.failures = [failure] * 2
    with pytest.raises(RefusedError) as caught:
        yahoo.fetch_bars(GSPC, *WEEK, sleep=no_sleep_expected)
    message = str(caught.value)
    assert message.startswith("[yfinance] us/GSPC: Yahoo refused ^GSPC daily bars ")
    assert "2026-03-16..2026-03-21 (end excluded)" in message
    assert f"HTTP {REFUSED[failure]}" in message
    assert len(yahoo_site.bars_requests()) == 2  # yfinance's own second try, then no retry


def test_unknown_symbol_is_a_clear_error_without_retries(yahoo_site: FakeYahoo) -> None:
    unknown = replace(GSPC, live_symbol="^NOPE")
    with pytest.raises(FeedError) as caught:
        yahoo.fetch_bars(unknown, *WEEK, sleep=no_sleep_expected)
    message = str(caught.value)
    assert message.startswith("[yfinance] us/GSPC: Yahoo does not serve ^NOPE daily bars")
    assert "HTTP 404" in message and "gave up" not in message


def test_eu_consent_page_is_accepted_by_yfinance(
    fresh_yfinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = FakeYahoo({"^GSPC": GSPC_BODY}, eu=True).install(monkeypatch)
    rows = yahoo.fetch_bars(GSPC, *WEEK, sleep=no_sleep_expected)
    assert len(rows) == 5
    consents = [form for method, url, form in site.requests if method == "POST"]
    assert consents and all(form["csrfToken"] == "tok-8f2e" for form in consents)
    assert {url for method, url, _ in site.requests if method == "POST"} == {CONSENT_URL}


def test_one_refused_instrument_leaves_the_rest_of_its_market(
    fresh_yfinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    us = instruments("us")
    charts = {}
    for instrument in us:
        body = json.loads(json.dumps(GSPC_BODY))
        body["chart"]["result"][0]["meta"]["symbol"] = instrument.live_symbol
        charts[instrument.live_symbol] = body
    site = FakeYahoo(charts).install(monkeypatch)
    site.failures = [Failure.REFUSED_451] * 2  # the first instrument's bars
    source = RawSource(
        mode="live",
        replay_dir=".",
        ccxt_exchanges="binance",
        requests_per_minute=0,
        lookback_days=0,
    )
    batch = source.fetch_bars(markets()["us"], us, *WEEK)
    assert set(batch.frame["instrument_id"]) == {i.instrument_id for i in us[1:]}
    (unavailable,) = batch.unavailable
    assert unavailable.startswith(f"{us[0].instrument_id}: [yfinance] {us[0].instrument_id}: ")
    assert "Yahoo refused" in unavailable


RECORDED = "api-samples/yahoo/yahoo-finance2-fixture_chart-AAPL-2020-08-31-to-2020-11-07.json"


def test_recorded_yahoo_response_round_trips(
    reference_data: Path, fresh_yfinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.loads((reference_data / RECORDED).read_text())["response"]["bodyJson"]
    FakeYahoo({"AAPL": body}).install(monkeypatch)
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
