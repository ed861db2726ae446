"""Crypto daily candles through ccxt's unified ``fetch_ohlcv``, over a fallback chain of venues.

``exchange.fetch_ohlcv(symbol, "1d", since=ms, limit=n)`` answers candles
``[open time in ms UTC, open, high, low, close, volume]`` as numbers (ccxt has already parsed the
venue's strings), oldest first, opening at or after ``since``. When the range reaches today the
last candle is the still-open one of the current UTC day. Venues cap ``limit`` (Binance 1000,
OKX 300, Kraken 720), Kraken keeps only its latest 720 daily candles, and some venues refuse
whole regions (Binance answers HTTP 451 to US addresses), so long ranges are paged and venues are
tried in order. See docs/feeds-crypto.md.
"""

import math
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from market_intel.feeds import (
    BAR_COLUMNS,
    FeedError,
    RetryableError,
    SchemaDriftError,
    Throttle,
    bar_frame,
    log,
    retry_after_seconds,
    with_retries,
)
from market_intel.universe import Instrument

if TYPE_CHECKING:
    import ccxt

FEED = "ccxt"
TIMEFRAME = "1d"
PAGE_LIMIT = 1000
DAY_MS = 86_400_000
OHLCV_FIELDS = ("timestamp", "open", "high", "low", "close", "volume")
# Venues that serve only their most recent daily candles, whatever ``since`` asks: Kraken's OHLC
# endpoint returns "up to 720 of the most recent entries" (Kraken API reference, Get OHLC Data).
HISTORY_DEPTH = {"kraken": 720}

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
    """Completed daily bars with ``start <= session_date < end``, venue by venue along the chain.

    A venue that refuses, is down, does not list the pair, keeps failing after retries or has no
    candles for the range hands over to the next one. A venue that keeps only its latest candles
    (Kraken) serves what it has and leaves the older part of the range to the venues after it.
    Rows record the venue that answered (``is_fallback`` after the first of the chain). No rows
    is no data when every venue answered without candles, and a ``FeedError`` naming each
    venue's reason when any failed; a part of the range no venue served is logged and listed
    in ``frame.attrs["unavailable"]``.
    """
    import ccxt

    now = _as_utc(now or datetime.now(UTC))
    # A candle opening at or after today's UTC midnight cannot be complete: never ask for it.
    missing_end = min(end, now.date())  # [start, missing_end) is still to be served
    frames: list[pd.DataFrame] = []
    reasons: list[str] = []
    failed = not exchanges
    for position, exchange_id in enumerate(exchanges):
        if start >= missing_end:
            break
        first = max(start, earliest_servable(exchange_id, now) or start)
        if first >= missing_end:
            failed = True
            depth = HISTORY_DEPTH[exchange_id]
            reasons.append(f"{exchange_id}: keeps only its latest {depth} daily candles")
            continue
        try:
            exchange = exchange_factory(exchange_id)
            bars = _venue_bars(exchange, instrument, first, missing_end, now, throttle, sleep)
        except SchemaDriftError:
            raise
        except (ccxt.BaseError, FeedError) as error:
            failed = True
            reasons.append(f"{exchange_id}: {_describe(error)}")
            _log_skip(instrument, exchange_id, first, missing_end, reasons[-1])
            continue
        if bars.empty:
            reasons.append(f"{exchange_id}: no candles for {first}..{missing_end}")
            _log_skip(instrument, exchange_id, first, missing_end, reasons[-1])
            continue
        frames.append(
            bar_frame(
                instrument.instrument_id, bars, f"{FEED}:{exchange_id}", is_fallback=position > 0
            )
        )
        # A venue with a fixed depth may start later than asked: the days before are missing.
        missing_end = bars["session_date"].min() if exchange_id in HISTORY_DEPTH else first
    if not frames and failed:
        raise FeedError(
            FEED,
            instrument.instrument_id,
            f"no exchange served {instrument.live_symbol} daily candles for {start}..{end} "
            f"(end excluded): {'; '.join(reasons) or 'no exchange configured'}",
        )
    result = (
        pd.concat(frames, ignore_index=True).sort_values("session_date").reset_index(drop=True)
        if frames
        else bar_frame(instrument.instrument_id, pd.DataFrame(columns=BAR_COLUMNS), FEED)
    )
    result.attrs["unavailable"] = _unserved(instrument, start, missing_end, frames, reasons)
    return result


def earliest_servable(exchange_id: str, now: datetime) -> date | None:
    """The first UTC day a venue with a fixed history depth still serves (its depth counts
    today's open candle); ``None`` for venues that serve their whole history."""
    depth = HISTORY_DEPTH.get(exchange_id)
    return None if depth is None else _as_utc(now).date() - timedelta(days=depth - 1)


def _unserved(
    instrument: Instrument,
    start: date,
    missing_end: date,
    frames: list[pd.DataFrame],
    reasons: list[str],
) -> list[str]:
    """The older part of the range no venue served after one served the newer part: logged and
    listed, so a short history is never silent."""
    if not frames or start >= missing_end:
        return []
    message = (
        f"{instrument.instrument_id}: {start}..{missing_end} (end excluded) not served: "
        f"{'; '.join(reasons) or 'no venue after the one that served the rest'}"
    )
    log.warning("[%s] %s", FEED, message)
    return [message]


def _describe(error: Exception) -> str:
    """One line for a venue's failure: our own errors without their feed prefix."""
    if isinstance(error, FeedError):
        text = str(error).removeprefix(f"[{error.feed}] {error.instrument}: ")
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())


def _log_skip(
    instrument: Instrument, exchange_id: str, start: date, end: date, reason: str
) -> None:
    log.warning(
        "[%s] %s: %s did not serve %s..%s: %s",
        FEED,
        instrument.instrument_id,
        exchange_id,
        start,
        end,
        reason,
    )


def _venue_bars(
    exchange: "ccxt.Exchange",
    instrument: Instrument,
    start: date,
    end: date,
    now: datetime,
    throttle: Throttle,
    sleep: Callable[[float], None],
) -> pd.DataFrame:
    """One venue's completed bars with ``start <= session_date < end``."""
    rows = _fetch_candles(exchange, instrument, _day_ms(start), _day_ms(end), throttle, sleep)
    bars = parse_ohlcv(rows, now, instrument.instrument_id)
    return bars[(bars["session_date"] >= start) & (bars["session_date"] < end)]


def _fetch_candles(
    exchange: "ccxt.Exchange",
    instrument: Instrument,
    since: int,
    until: int,
    throttle: Throttle,
    sleep: Callable[[float], None],
) -> list[list]:
    """Candles opening in ``[since, until)``, page by page: each page starts one day after the
    last candle of the previous one. An empty page skips one page's span of days: OKX answers
    a window of days, empty before the pair's listing, and later windows may hold candles."""
    limit = _page_limit(exchange)
    rows: list[list] = []
    while since < until:
        page = with_retries(
            partial(_fetch_page, exchange, instrument.live_symbol, since, limit, throttle),
            feed=FEED,
            instrument=instrument.instrument_id,
            sleep=sleep,
        )
        if not page:
            since += limit * DAY_MS
            continue
        _check_candles(page, instrument.instrument_id)
        rows.extend(page)
        last_open = int(max(row[0] for row in page))
        if last_open < since:
            break  # the venue ignored ``since``: asking again would return the same page forever
        since = last_open + DAY_MS
    return rows


def _fetch_page(
    exchange: "ccxt.Exchange", symbol: str, since: int, limit: int, throttle: Throttle
) -> list:
    """One page of candles. Timeouts, dropped connections, rate limits, HTTP 5xx and answers
    that are not JSON are worth a retry; a refusal (HTTP 451/403), a venue's declared
    maintenance or another ``ExchangeNotAvailable`` below HTTP 500 is not: the next venue is
    asked instead."""
    import ccxt

    throttle.wait()
    try:
        # Markets first, on their own: ccxt reads a garbled markets answer as no markets, and
        # would then call the pair unlisted. An empty market list is loaded again.
        if not exchange.load_markets(reload=not exchange.markets):
            raise RetryableError(f"{exchange.id}: loaded no markets")
        page = exchange.fetch_ohlcv(symbol, TIMEFRAME, since=since, limit=limit)
    except ccxt.OnMaintenance:
        raise
    except ccxt.ExchangeNotAvailable as error:
        if (_http_status(error) or 0) < 500:
            raise
        raise _retryable(exchange, error) from error
    except ccxt.OperationFailed as error:
        raise _retryable(exchange, error) from error
    _require_json(exchange)
    return page


def _require_json(exchange: "ccxt.Exchange") -> None:
    """Raise ``RetryableError`` when the venue's last answer was not JSON (an HTML page, a cut
    body): ccxt hands such a body to the venue's parser, which finds nothing in it."""
    body = getattr(exchange, "last_http_response", None)
    if isinstance(body, str) and exchange.parse_json(body) is None:
        raise RetryableError(f"{exchange.id}: answer is not JSON: {body[:120]!r}")


def _retryable(exchange: "ccxt.Exchange", error: Exception) -> RetryableError:
    """A retry of ``error``, waiting at least what the venue's ``Retry-After`` asked."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    return RetryableError(
        f"{exchange.id}: {type(error).__name__}: {error}",
        retry_after_seconds(headers.get("Retry-After")),
    )


def _http_status(error: BaseException) -> int | None:
    """The HTTP status behind a ccxt error: ccxt raises it while handling requests'
    ``HTTPError``, which stays chained to it as its context."""
    cause = error.__cause__ or error.__context__
    while cause is not None:
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if status:
            return int(status)
        cause = cause.__cause__ or cause.__context__
    return None


def _page_limit(exchange: "ccxt.Exchange") -> int:
    """Candles asked per request: ours, or the venue's smaller cap as ccxt describes it."""
    features = getattr(exchange, "features", None) or {}
    cap = ((features.get("spot") or {}).get("fetchOHLCV") or {}).get("limit")
    return min(PAGE_LIMIT, int(cap)) if cap else PAGE_LIMIT


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
