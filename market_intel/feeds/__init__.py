"""Feeds: small pure parsers over each library's real output, and the live calls around them.

Every parser returns the same normalised frame for its kind of data (``BAR_FRAME_COLUMNS`` for
price bars), so adapters differ only where the sources really differ.
"""

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import pandas as pd

log = logging.getLogger("market_intel.feeds")

BAR_COLUMNS = ["session_date", "open", "high", "low", "close", "volume"]
BAR_FRAME_COLUMNS = ["instrument_id", *BAR_COLUMNS, "source", "is_fallback", "fetched_at"]


class FeedError(RuntimeError):
    """A feed failed in a way a person can act on: the message names feed, instrument and date."""

    def __init__(self, feed: str, instrument: str, message: str):
        self.feed, self.instrument = feed, instrument
        super().__init__(f"[{feed}] {instrument}: {message}")


class SchemaDriftError(FeedError):
    """The source answered with columns other than those the parser was written against."""

    def __init__(self, feed: str, instrument: str, expected: Iterable[str], found: Iterable[str]):
        super().__init__(
            feed,
            instrument,
            f"schema drift: expected columns {sorted(expected)}, found {sorted(map(str, found))}",
        )


class RetryableError(RuntimeError):
    """A failure worth another try: a timeout, HTTP 429 or 5xx. ``retry_after`` is the wait in
    seconds the server asked for (``Retry-After``), 0 when it named none."""

    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = retry_after


class RefusedError(FeedError):
    """The source refused to serve this client (HTTP 403/451: a region or address block):
    retrying cannot help, so it is raised at once."""


MAX_RETRY_AFTER = 300.0  # a longer Retry-After is capped: the run should fail, not hang


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP date), 0 when absent."""
    if not value:
        return 0.0
    if value.strip().isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return 0.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def require_columns(
    frame: pd.DataFrame, expected: Iterable[str], feed: str, instrument: str
) -> None:
    """Raise ``SchemaDriftError`` unless every expected column is present."""
    expected = list(expected)
    if not set(expected) <= set(map(str, frame.columns)):
        raise SchemaDriftError(feed, instrument, expected, frame.columns)


def bar_frame(
    instrument_id: str, bars: pd.DataFrame, source: str, is_fallback: bool = False
) -> pd.DataFrame:
    """Normalise parsed bars (``session_date`` and OHLCV) into the raw bar table's columns."""
    frame = pd.DataFrame(columns=BAR_FRAME_COLUMNS) if bars.empty else bars.copy()
    for column in BAR_COLUMNS[1:]:
        frame[column] = pd.to_numeric(frame.get(column), errors="coerce").astype("float64")
    frame["session_date"] = pd.to_datetime(frame["session_date"]).dt.date
    frame["instrument_id"] = instrument_id
    frame["source"] = source
    frame["is_fallback"] = is_fallback
    frame["fetched_at"] = datetime.now(UTC).replace(tzinfo=None)
    return frame[BAR_FRAME_COLUMNS].sort_values("session_date").reset_index(drop=True)


T = TypeVar("T")


def with_retries(
    call: Callable[[], T],
    *,
    feed: str,
    instrument: str,
    attempts: int = 4,
    base_delay: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (RetryableError, TimeoutError, ConnectionError),
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Call ``call``, retrying transient failures with exponential backoff (2 s, 4 s, 8 s...),
    each wait stretched to the server's ``Retry-After`` when the error carries one."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except retry_on as error:
            if attempt == attempts:
                raise FeedError(
                    feed, instrument, f"gave up after {attempts} attempts: {error}"
                ) from error
            delay = max(base_delay * 2 ** (attempt - 1), getattr(error, "retry_after", 0.0))
            log.warning(
                "[%s] %s: %s; retry %d/%d in %.0fs",
                feed,
                instrument,
                error,
                attempt,
                attempts,
                delay,
            )
            (sleep or time.sleep)(delay)
    raise AssertionError("unreachable")


class Throttle:
    """Spaces calls to a source at most ``per_minute`` a minute: free sources ban bursts."""

    def __init__(
        self,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.last: float | None = None

    def wait(self) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            self.sleep(self.interval - (now - self.last))
            now = self.clock()
        self.last = now
