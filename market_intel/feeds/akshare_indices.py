"""Hong Kong and A-share index bars through akshare: Sina first, Eastmoney as the fallback.

Sina answers an index's whole history in one request; Eastmoney, which bans quick callers,
answers JSON: Hong Kong after a lookup of the index's internal market number, the A-share
indices for the requested range only. ``call_with_retries`` (throttle, retries of transient
failures, one clear error for the rest) and ``first_answer`` (a chain of sources) are shared
with the breadth feeds. docs/feeds-akshare.md has the depth, units and failure behaviour.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import TypeVar

import pandas as pd
import requests

from market_intel.feeds import (
    BAR_COLUMNS,
    FeedError,
    RetryableError,
    Throttle,
    bar_frame,
    require_columns,
    with_retries,
)
from market_intel.universe import Instrument

FEED = "akshare"
EM_LOT = 100  # Eastmoney counts A-share volume in lots of 100 shares, Sina in shares

SINA_COLUMNS = ("date", "open", "high", "low", "close", "volume")
EM_HK_COLUMNS = ("date", "open", "high", "low", "latest")
EM_CN_COLUMNS = ("date", "open", "close", "high", "low", "volume")

log = logging.getLogger("market_intel.feeds.akshare")

T = TypeVar("T")
Attempt = tuple[str, Callable[[], tuple[pd.DataFrame, bool]]]


def _bars(
    frame: pd.DataFrame,
    instrument_id: str,
    expected: Sequence[str],
    rename: dict[str, str] | None = None,
    volume_unit: float = 1.0,
) -> pd.DataFrame:
    """BAR_COLUMNS from one akshare frame; a missing volume column becomes NaN."""
    if frame.empty:
        return pd.DataFrame(columns=BAR_COLUMNS)
    require_columns(frame, expected, FEED, instrument_id)
    bars = frame.rename(columns={"date": "session_date", **(rename or {})})
    bars = bars.reindex(columns=BAR_COLUMNS)
    bars["session_date"] = pd.to_datetime(bars["session_date"], errors="coerce").dt.date
    for column in BAR_COLUMNS[1:]:
        bars[column] = pd.to_numeric(bars[column], errors="coerce").astype("float64")
    bars["volume"] = bars["volume"] * volume_unit
    return bars.dropna(subset=["session_date", "close"]).reset_index(drop=True)


def parse_sina_daily(frame: pd.DataFrame, instrument_id: str) -> pd.DataFrame:
    """Bars from ``stock_hk_index_daily_sina`` or ``stock_zh_index_daily`` (one shape, shares)."""
    return _bars(frame, instrument_id, SINA_COLUMNS)


def parse_em_hk_daily(frame: pd.DataFrame, instrument_id: str) -> pd.DataFrame:
    """Bars from ``stock_hk_index_daily_em``: the close is called ``latest``, volume is absent."""
    return _bars(frame, instrument_id, EM_HK_COLUMNS, rename={"latest": "close"})


def parse_em_cn_daily(frame: pd.DataFrame, instrument_id: str) -> pd.DataFrame:
    """Bars from ``stock_zh_index_daily_em``, volume turned from lots into shares as Sina counts."""
    return _bars(frame, instrument_id, EM_CN_COLUMNS, volume_unit=EM_LOT)


@dataclass(frozen=True)
class Source:
    """One akshare function for a market. ``ranged`` ones take start/end and answer only that."""

    function: str
    parse: Callable[[pd.DataFrame, str], pd.DataFrame]
    ranged: bool = False


SOURCES: dict[str, tuple[Source, Source]] = {
    "hk": (
        Source("stock_hk_index_daily_sina", parse_sina_daily),
        Source("stock_hk_index_daily_em", parse_em_hk_daily),
    ),
    "cn": (
        Source("stock_zh_index_daily", parse_sina_daily),
        Source("stock_zh_index_daily_em", parse_em_cn_daily, ranged=True),
    ),
}


def ymd(day: date) -> str:
    """The ``YYYYMMDD`` form akshare's date parameters take."""
    return day.strftime("%Y%m%d")


def in_range(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Rows with ``start <= session_date < end``."""
    dates = frame["session_date"]
    return frame[(dates >= start) & (dates < end)].reset_index(drop=True)


RETRY_AFTER_CAP = 120.0  # seconds; a longer Retry-After is a ban, better met by the fallback
REFUSED = {403: "forbidden", 451: "refused for legal reasons, e.g. this region"}
# What akshare raises when a body is not what its parser expects: an HTML page where JSON was
# expected, a changed layout, an empty or partial answer.
BAD_BODY = (ValueError, KeyError, TypeError, IndexError, AttributeError)


def http_status(error: BaseException) -> int | None:
    """The HTTP status behind a ``requests.HTTPError``, if any."""
    response = getattr(error, "response", None)
    return None if response is None else response.status_code


def is_transient(error: BaseException) -> bool:
    """Whether another try may help: timeouts, dropped or truncated connections, 429 and 5xx."""
    if isinstance(error, requests.HTTPError):
        status = http_status(error)
        return status is not None and (status == 429 or status >= 500)
    return isinstance(
        error,
        (
            requests.Timeout,
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            TimeoutError,
            ConnectionError,
        ),
    )


def retry_after(error: BaseException) -> float | None:
    """Seconds a 429 or 503 answer asks us to wait (``Retry-After`` in seconds), capped."""
    response = getattr(error, "response", None)
    value = None if response is None else response.headers.get("Retry-After")
    try:
        return min(float(value), RETRY_AFTER_CAP) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the exponential backoff stands in


def describe(error: BaseException) -> str:
    """One line for a failed call: refusals and unreadable bodies said as what they mean."""
    status = http_status(error) if isinstance(error, requests.HTTPError) else None
    if status in REFUSED:
        return f"HTTP {status} ({REFUSED[status]}): {error}"
    if isinstance(error, BAD_BODY):
        return (
            f"unexpected answer ({type(error).__name__}: {error}): the source changed its "
            "format, answered an error page, or cut the body short"
        )
    return f"{type(error).__name__}: {error}"


def call_with_retries(
    call: Callable[[], T], *, instrument: str, throttle: Throttle, what: str = ""
) -> T:
    """Run one akshare call after ``throttle.wait()``, retrying transient failures.

    The backoff sleeps through ``throttle.sleep`` so one injected sleep governs every wait; a
    ``Retry-After`` is waited out on top of it. Anything else ends in a ``FeedError`` naming the
    feed, the instrument and ``what`` was asked (a date or range), so the caller can fall back.
    """

    def attempt() -> T:
        throttle.wait()
        try:
            return call()
        except (FeedError, RetryableError):
            raise
        except Exception as error:  # akshare fails in any type: classify it
            if is_transient(error):
                wait = retry_after(error)
                if wait:
                    throttle.sleep(wait)
                raise RetryableError(f"{what or 'call'}: {describe(error)}") from error
            raise FeedError(FEED, instrument, f"{what or 'call'}: {describe(error)}") from error

    return with_retries(attempt, feed=FEED, instrument=instrument, sleep=throttle.sleep)


def first_answer(
    attempts: Sequence[Attempt],
    *,
    instrument: str,
    what: str,
    fatal: tuple[type[BaseException], ...] = (),
) -> tuple[str, bool, pd.DataFrame]:
    """Ask sources in order until one answers fully: ``(function, is_fallback, frame)``.

    Each attempt returns its parsed frame and whether that frame fully answers the question.
    Without a full answer, the partial answer with the most rows wins (the earlier source on
    ties), so an empty range stays "no data"; only when every source raised is it an error.
    An error of a ``fatal`` type is raised at once instead of asking the next source.
    """
    partial_answers: list[tuple[str, bool, pd.DataFrame]] = []
    reasons: list[str] = []
    for position, (function, fetch) in enumerate(attempts):
        try:
            frame, complete = fetch()
        except fatal:
            raise
        except Exception as error:  # noqa: BLE001 - akshare fails in any type; ask the next source
            log.warning("[%s] %s: %s failed: %s", FEED, instrument, function, error)
            reasons.append(f"{function}: {error}")
            continue
        if complete:
            return function, position > 0, frame
        log.info(
            "[%s] %s: %s has %d rows, not a full answer", FEED, instrument, function, len(frame)
        )
        partial_answers.append((function, position > 0, frame))
    if partial_answers:
        return max(partial_answers, key=lambda answer: len(answer[2]))
    raise FeedError(FEED, instrument, f"{what}: every source failed: " + "; ".join(reasons))


def _fetch(
    source: Source, instrument: Instrument, start: date, end: date, throttle: Throttle
) -> tuple[pd.DataFrame, bool]:
    """Bars in range from one source, and whether its history reaches back to ``start``."""
    import akshare as ak

    kwargs = {"symbol": instrument.live_symbol}
    if source.ranged:
        kwargs.update(start_date=ymd(start), end_date=ymd(end - timedelta(days=1)))
    raw = call_with_retries(
        lambda: getattr(ak, source.function)(**kwargs),
        instrument=instrument.instrument_id,
        throttle=throttle,
        what=f"{source.function} {start}..{end}",
    )
    history = source.parse(raw, instrument.instrument_id)
    bars = in_range(history, start, end)
    covers = not bars.empty and (source.ranged or min(history["session_date"]) <= start)
    return bars, covers


def fetch_bars(instrument: Instrument, start: date, end: date, throttle: Throttle) -> pd.DataFrame:
    """Daily bars with ``start <= session_date < end`` as raw bar table rows.

    The primary (Sina) is used when its history covers the range; otherwise, or when it fails
    after retries, the fallback (Eastmoney) is asked and recorded in ``source``/``is_fallback``.
    """
    sources = SOURCES.get(instrument.market)
    if sources is None:
        raise FeedError(FEED, instrument.instrument_id, f"no source for {instrument.market!r}")
    attempts = [
        (source.function, partial(_fetch, source, instrument, start, end, throttle))
        for source in sources
    ]
    function, is_fallback, bars = first_answer(
        attempts,
        instrument=instrument.instrument_id,
        what=f"daily bars {start}..{end} (end exclusive)",
    )
    return bar_frame(
        instrument.instrument_id, bars, source=f"{FEED}:{function}", is_fallback=is_fallback
    )
