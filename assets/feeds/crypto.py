"""Crypto daily candles through ccxt's unified ``fetch_ohlcv``, over a fallback chain of venues.

``exchange.fetch_ohlcv(symbol, "1d", since=ms, limit=n)`` answers candles
``[open time in ms UTC, open, high, low, close, volume]`` as numbers (ccxt has already parsed the
venue's strings), oldest first, opening at or after ``since``. When the range reaches today the
last candle is the still-open one of the current UTC day. Venues cap ``limit`` (Binance 1000,
OKX 300) and some refuse whole regions (Binance answers HTTP 451 to US addresses), so long
ranges are paged and venues are tried in order.
"""

import math
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from assets.feeds import (
    BAR_COLUMNS,
    FeedError,
    RetryableError,
    SchemaDriftError,
    Throttle,
    bar_frame,
    log,
    with_retries,
)
from assets.universe import Instrument

if TYPE_CHECKING:
    import ccxt

FEED = "ccxt"
TIMEFRAME = "1d"
PAGE_LIMIT = 1000
DAY_MS = 86_400_000
OHLCV_FIELDS = ("timestamp", "open", "high", "low", "close", "volume")

ExchangeFactory = Callable[[str], "ccxt.Exchange"]


def make_exchange(exchange_id: str) -> "ccxt.Exchange":
    """A public-data client for one venue, with ccxt's own rate limiter on.

    Only spot markets are loaded: one market request instead of three on Binance, OKX or Bybit,
    and a venue's blocked derivatives API cannot stop its spot candles.
    """
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise ccxt.NotSupported(f"{exchange_id!r} is not a ccxt exchange id")
    return getattr(ccxt, exchange_id)(
        {"enableRateLimit": True, "options": {"fetchMarkets": {"types": ["spot"]}}}
    )


def parse_ohlcv(rows: list[list], now: datetime, instrument_id: str = "unknown") -> pd.DataFrame:
    """Completed daily bars from ccxt candles.

    A candle is dated by the UTC day it opened; the candle of ``now``'s UTC day (or later) is
    dropped because its close is not final yet. A naive ``now`` is taken as UTC.
    """
    _check_candles(rows, instrument_id)
    if not rows:
        return pd.DataFrame(columns=BAR_COLUMNS)
    frame = pd.DataFrame([list(row) for row in rows], columns=OHLCV_FIELDS, dtype="float64")
    frame = frame.drop_duplicates("timestamp", keep="last").sort_values("timestamp")
    opened = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ms", utc=True)
    frame["session_date"] = opened.dt.date
    frame = frame[frame["session_date"] < _as_utc(now).date()]
    return frame[BAR_COLUMNS].reset_index(drop=True)


def fetch_bars(
    instrument: Instrument,
    start: date,
    end: date,
    exchanges: list[str],
    throttle: Throttle,
    now: datetime | None = None,
    *,
    exchange_factory: ExchangeFactory = make_exchange,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """Completed daily bars with ``start <= session_date < end`` from the first venue that serves.

    A venue that refuses, is down, does not list the pair or keeps failing after retries hands
    over to the next one, and the rows record which venue answered (``is_fallback`` after the
    first). Only when every venue fails is it an error; an empty answer is no data.
    """
    import ccxt

    now = _as_utc(now or datetime.now(UTC))
    # A candle opening at or after today's UTC midnight cannot be complete: never ask for it.
    until = min(_day_ms(end), _day_ms(now.date()))
    reasons = []
    for position, exchange_id in enumerate(exchanges):
        try:
            exchange = exchange_factory(exchange_id)
            rows = _fetch_candles(exchange, instrument, _day_ms(start), until, throttle, sleep)
        except SchemaDriftError:
            raise
        except (ccxt.BaseError, FeedError) as error:
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            reasons.append(f"{exchange_id}: {reason}")
            log.warning(
                "[%s] %s: %s did not serve %s..%s: %s",
                FEED,
                instrument.instrument_id,
                exchange_id,
                start,
                end,
                reason,
            )
            continue
        bars = parse_ohlcv(rows, now, instrument.instrument_id)
        bars = bars[(bars["session_date"] >= start) & (bars["session_date"] < end)]
        return bar_frame(
            instrument.instrument_id,
            bars,
            source=f"{FEED}:{exchange_id}",
            is_fallback=position > 0,
        )
    raise FeedError(
        FEED,
        instrument.instrument_id,
        f"no exchange served {instrument.live_symbol} daily candles for {start}..{end} "
        f"(end excluded): {'; '.join(reasons) or 'no exchange configured'}",
    )


def _fetch_candles(
    exchange: "ccxt.Exchange",
    instrument: Instrument,
    since: int,
    until: int,
    throttle: Throttle,
    sleep: Callable[[float], None],
) -> list[list]:
    """Candles opening in ``[since, until)``, page by page: each page starts one day after the
    last candle of the previous one, until a page is empty or the range is covered."""
    rows: list[list] = []
    while since < until:
        page = with_retries(
            partial(_fetch_page, exchange, instrument.live_symbol, since, throttle),
            feed=FEED,
            instrument=instrument.instrument_id,
            sleep=sleep,
        )
        if not page:
            break
        _check_candles(page, instrument.instrument_id)
        rows.extend(page)
        last_open = int(max(row[0] for row in page))
        if last_open < since:
            break  # the venue ignored ``since``: asking again would return the same page forever
        since = last_open + DAY_MS
    return rows


def _fetch_page(exchange: "ccxt.Exchange", symbol: str, since: int, throttle: Throttle) -> list:
    """One page of candles. Timeouts, dropped connections, rate limits and garbled answers
    (ccxt's ``OperationFailed`` family) are worth a retry; a venue that is not available is not."""
    import ccxt

    throttle.wait()
    try:
        return exchange.fetch_ohlcv(symbol, TIMEFRAME, since=since, limit=PAGE_LIMIT)
    except ccxt.ExchangeNotAvailable:
        raise  # a refusal (HTTP 451/403) or an outage: the next venue, not another try
    except ccxt.OperationFailed as error:
        raise RetryableError(f"{exchange.id}: {type(error).__name__}: {error}") from error


def _check_candles(rows: list, instrument_id: str) -> None:
    """Raise ``SchemaDriftError`` unless every row is a 6-wide numeric ccxt candle."""
    for index, row in enumerate(rows):
        if not _is_candle(row):
            found = f"row {index}: {repr(row)[:200]}"
            raise SchemaDriftError(FEED, instrument_id, OHLCV_FIELDS, [found])


def _is_candle(row: object) -> bool:
    """``[ms, open, high, low, close, volume]``: numbers, where ccxt's None marks a value the
    venue did not give (kept as NaN); the open time is always required."""
    return (
        isinstance(row, list | tuple)
        and len(row) == len(OHLCV_FIELDS)
        and _is_number(row[0])
        and all(value is None or _is_number(value) for value in row[1:])
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day_ms(day: date) -> int:
    """Milliseconds since the epoch at the start of ``day`` in UTC: ccxt's ``since`` unit."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
