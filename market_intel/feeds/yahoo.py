"""US indices and ETFs through yfinance.

``Ticker.history(auto_adjust=False, actions=False)`` answers a frame indexed by ``Date``,
tz-aware in the exchange's zone (America/New_York), with columns Open, High, Low, Close,
Adj Close, Volume. Index points are not adjusted, so ``Close`` is the official close.

yfinance runs with its errors raised (``yf.config.debug.hide_exceptions = False``): by default it
logs a failure and answers an empty frame, which would pass as "no data". Its HTTP client is
curl_cffi, whose exceptions are not Python's ``ConnectionError``/``TimeoutError``, and whose
answers ``Ticker.history`` does not expose: ``YahooSession`` keeps Yahoo's last chart answer so
``fetch_bars`` can tell a refusal, a rate limit and an empty range apart (docs/feeds.md).
"""

import json
from collections.abc import Callable
from datetime import date
from functools import cache

import pandas as pd
from curl_cffi import requests as curl_requests

from market_intel.feeds import (
    BAR_COLUMNS,
    FeedError,
    RefusedError,
    RetryableError,
    bar_frame,
    require_columns,
    retry_after_seconds,
    with_retries,
)
from market_intel.universe import Instrument

FEED = "yfinance"
EXPECTED_COLUMNS = ("Open", "High", "Low", "Close", "Volume")
CHART_PATH = "/v8/finance/chart/"
REFUSED = frozenset({403, 451})  # an address or region block: retrying cannot help
# Yahoo's reason when a range holds no bars of an existing symbol (e.g. before its first trade).
NO_DATA_REASON = "Data doesn't exist"


class YahooSession(curl_requests.Session):
    """The client yfinance uses by default (curl_cffi impersonating Chrome), keeping Yahoo's last
    chart answer: ``Ticker.history`` does not say which HTTP status a failure came with."""

    def __init__(self) -> None:
        super().__init__(impersonate="chrome")
        self.last_chart: curl_requests.Response | None = None

    def request(self, method: str, url: str, *args, **kwargs) -> curl_requests.Response:
        response = super().request(method, url, *args, **kwargs)
        if CHART_PATH in url:
            self.last_chart = response
        return response


@cache
def yahoo_session() -> YahooSession:
    """One client per process: yfinance keeps its cookie and crumb with it."""
    return YahooSession()


def parse_history(frame: pd.DataFrame, instrument_id: str) -> pd.DataFrame:
    """Bars (session_date, OHLCV) from a ``Ticker.history`` frame; an empty frame is no data."""
    if frame.empty:
        return pd.DataFrame(columns=BAR_COLUMNS)
    require_columns(frame, EXPECTED_COLUMNS, FEED, instrument_id)
    index = pd.DatetimeIndex(frame.index)
    session_dates = (index.tz_localize(None) if index.tz is not None else index).normalize()
    return pd.DataFrame(
        {
            "session_date": session_dates.date,
            "open": frame["Open"].to_numpy(),
            "high": frame["High"].to_numpy(),
            "low": frame["Low"].to_numpy(),
            "close": frame["Close"].to_numpy(),
            "volume": frame["Volume"].to_numpy(),
        }
    )


def fetch_history(
    symbol: str, start: date, end: date, session: YahooSession | None = None
) -> pd.DataFrame:
    """Daily bars with ``start <= session < end`` from Yahoo, as yfinance returns them, with
    yfinance's errors raised rather than logged behind an empty frame."""
    import yfinance as yf

    yf.config.debug.hide_exceptions = False
    return yf.Ticker(symbol, session=session or yahoo_session()).history(
        start=start.isoformat(),
        end=end.isoformat(),
        interval="1d",
        auto_adjust=False,
        actions=False,
    )


def fetch_bars(
    instrument: Instrument,
    start: date,
    end: date,
    sleep: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """The live adapter: the history call, retried while the failure is transient, parsed into
    the raw bar table's columns. Yahoo having no bars for the range is no data; a refusal, an
    unknown symbol or retries exhausted raise ``FeedError`` naming feed, instrument, range and
    what Yahoo answered."""
    session = yahoo_session()
    asked = f"{instrument.live_symbol} daily bars {start}..{end} (end excluded)"

    def call() -> pd.DataFrame:
        session.last_chart = None
        try:
            return fetch_history(instrument.live_symbol, start, end, session)
        except Exception as error:
            forget_answers()
            failure = classify(error, session.last_chart, instrument.instrument_id, asked)
            if failure is None:
                return pd.DataFrame()
            raise failure from error

    raw = with_retries(call, feed=FEED, instrument=instrument.instrument_id, sleep=sleep)
    return bar_frame(instrument.instrument_id, parse_history(raw, instrument.instrument_id), FEED)


def classify(
    error: Exception,
    last_chart: curl_requests.Response | None,
    instrument_id: str,
    asked: str,
) -> Exception | None:
    """What a yfinance exception means: ``None`` when Yahoo has no bars for the range, a
    ``RetryableError`` when another try may succeed (network failures, HTTP 429 and 5xx,
    answers that are not JSON, Yahoo's "will be right back" page), else a clear ``FeedError``."""
    from yfinance.exceptions import YFDataException, YFPricesMissingError, YFRateLimitError

    answer = _failed_answer(error, last_chart)
    status = answer.status_code if answer is not None else None
    said = _what_yahoo_said(error, answer)
    if status in REFUSED:
        return RefusedError(FEED, instrument_id, f"Yahoo refused {asked}: {said}")
    if isinstance(error, YFPricesMissingError) and _is_no_data(error, status):
        return None
    if isinstance(error, YFRateLimitError) or status == 429 or (status or 0) >= 500:
        wait = retry_after_seconds(answer.headers.get("Retry-After")) if answer else 0.0
        return RetryableError(f"{asked}: {said}", wait)
    if (status or 0) >= 400:
        return FeedError(FEED, instrument_id, f"Yahoo does not serve {asked}: {said}")
    if isinstance(
        error, curl_requests.exceptions.RequestException | json.JSONDecodeError | YFDataException
    ):
        return RetryableError(f"{asked}: {said}")
    return FeedError(FEED, instrument_id, f"{asked}: {said}")


def forget_answers() -> None:
    """yfinance keeps answers for past ranges in the process (an ``lru_cache`` on
    ``YfData.cache_get``), failed ones included: a retry must ask Yahoo again."""
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()


def _failed_answer(
    error: Exception, last_chart: curl_requests.Response | None
) -> curl_requests.Response | None:
    """The answer a failure came with: the one curl_cffi raised for (``raise_for_status``),
    else Yahoo's last chart answer."""
    response = getattr(error, "response", None)
    raised_for = isinstance(error, curl_requests.exceptions.HTTPError) and response is not None
    return response if raised_for and response.status_code >= 400 else last_chart


def _is_no_data(error: Exception, status: int | None) -> bool:
    """Yahoo answered a range without bars: HTTP 2xx with an empty chart, or its own reason."""
    reason = getattr(error, "yahoo_reason", None) or ""
    return status is None or 200 <= status < 300 or reason.startswith(NO_DATA_REASON)


def _what_yahoo_said(error: Exception, answer: curl_requests.Response | None) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    if answer is None or answer.status_code < 400:
        return text
    body = " ".join(answer.text.split())[:160]
    return f"HTTP {answer.status_code} {answer.reason} {body!r}; {text}"
