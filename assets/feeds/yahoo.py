"""US indices and ETFs through yfinance.

``Ticker.history(auto_adjust=False, actions=False)`` answers a frame indexed by ``Date``,
tz-aware in the exchange's zone (America/New_York), with columns Open, High, Low, Close,
Adj Close, Volume. Index points are not adjusted, so ``Close`` is the official close.
"""

from datetime import date

import pandas as pd

from assets.feeds import BAR_COLUMNS, RetryableError, bar_frame, require_columns, with_retries
from assets.universe import Instrument

FEED = "yfinance"
EXPECTED_COLUMNS = ("Open", "High", "Low", "Close", "Volume")


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


def fetch_history(symbol: str, start: date, end: date) -> pd.DataFrame:
    """Daily bars with ``start <= session < end`` from Yahoo, as yfinance returns them."""
    import yfinance as yf

    return yf.Ticker(symbol).history(
        start=start.isoformat(),
        end=end.isoformat(),
        interval="1d",
        auto_adjust=False,
        actions=False,
    )


def fetch_bars(instrument: Instrument, start: date, end: date) -> pd.DataFrame:
    """The live adapter: retried history call, parsed into the raw bar table's columns."""
    from yfinance.exceptions import YFRateLimitError

    def call() -> pd.DataFrame:
        try:
            return fetch_history(instrument.live_symbol, start, end)
        except YFRateLimitError as error:
            raise RetryableError(f"rate limited: {error}") from error

    raw = with_retries(call, feed=FEED, instrument=instrument.instrument_id)
    return bar_frame(instrument.instrument_id, parse_history(raw, instrument.instrument_id), FEED)
