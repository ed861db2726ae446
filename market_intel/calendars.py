"""Exchange sessions: the only place that knows when markets trade.

exchange-calendars publishes the sessions. Where a calendar's holidays are a hard-coded list that
ends (XSHG's ends 2026-12-31 in the pinned 4.13.2), the days past its last session come from a
maintained library's rule-based holidays for the same exchange, marked ``provisional`` until
exchange-calendars publishes them (docs/feeds.md, "Calendars").
"""

from datetime import date, datetime, timedelta
from functools import cache

import exchange_calendars as xcals
import pandas as pd
import pandas_market_calendars as pmc

from market_intel.universe import markets

CALENDAR_START = "2005-01-01"
COLUMNS = ["session_date", "open_utc", "close_utc", "provisional"]
# exchange-calendars name -> the pandas-market-calendars calendar whose rules stand in past the
# last published session. pandas-market-calendars 5.5.0 lists SSE holidays through 2026 (the
# same sessions as exchange-calendars) and guesses later years from the recent arrangements.
PROVISIONAL_RULES = {"XSHG": "SSE"}
# Quotes move from the pre-open auction on (A-shares: 09:15 for a 09:30 open).
PRE_OPEN = pd.Timedelta(minutes=15)


@cache
def exchange_calendar(name: str) -> xcals.ExchangeCalendar:
    """The calendar, from 2005 to the last day the library knows (about a year ahead)."""
    return xcals.get_calendar(name, start=CALENDAR_START)


@cache
def provisional_calendar(name: str) -> pmc.MarketCalendar | None:
    """The rule-based calendar standing in for ``name`` past its end, if there is one."""
    rules = PROVISIONAL_RULES.get(name)
    return None if rules is None else pmc.get_calendar(rules)


def last_published_session(calendar_name: str) -> date:
    """The last session exchange-calendars publishes for the calendar as installed."""
    return exchange_calendar(calendar_name).last_session.date()


def sessions(calendar_name: str, start: date, end: date) -> pd.DataFrame:
    """Sessions with ``start <= session_date < end``, their UTC open and close times, and
    whether a provisional calendar dates them (past the last published session).

    Past the last published session of a calendar without provisional rules, no session is
    returned: nothing can tell whether the exchange trades then.
    """
    published = _published_sessions(calendar_name, start, end)
    first_provisional = max(start, last_published_session(calendar_name) + timedelta(days=1))
    provisional = _provisional_sessions(calendar_name, first_provisional, end)
    frames = [frame for frame in (published, provisional) if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else _frame([], [], [], False)


def next_session(calendar_name: str, after: date, within_days: int) -> tuple[date, bool] | None:
    """The first session after ``after`` and before ``after + within_days``, and whether a
    provisional calendar dates it; None when the calendars know none. What ``sessions`` would
    answer first, without building its table: the report asks it for every date of a backfill."""
    calendar = exchange_calendar(calendar_name)
    start, end = after + timedelta(days=1), after + timedelta(days=within_days)
    if pd.Timestamp(start) <= calendar.last_session:
        first = calendar.date_to_session(pd.Timestamp(start), direction="next").date()
        return (first, False) if first < end else None
    published_end = last_published_session(calendar_name) + timedelta(days=1)
    provisional = _provisional_sessions(calendar_name, max(start, published_end), end)
    return None if provisional.empty else (provisional["session_date"].iloc[0], True)


def _published_sessions(calendar_name: str, start: date, end: date) -> pd.DataFrame:
    calendar = exchange_calendar(calendar_name)
    first = max(pd.Timestamp(start), calendar.first_session)
    last = min(pd.Timestamp(end) - pd.Timedelta(days=1), calendar.last_session)
    if first > last:
        return _frame([], [], [], False)
    schedule = calendar.schedule.loc[first:last]
    return _frame(schedule.index, schedule["open"], schedule["close"], False)


def _provisional_sessions(calendar_name: str, start: date, end: date) -> pd.DataFrame:
    calendar = provisional_calendar(calendar_name)
    if calendar is None or start >= end:
        return _frame([], [], [], True)
    schedule = calendar.schedule(start, end - timedelta(days=1))
    return _frame(schedule.index, schedule["market_open"], schedule["market_close"], True)


def _frame(days, opens, closes, provisional: bool) -> pd.DataFrame:
    """The sessions table's shape; times are naive UTC, as raw.market_sessions stores them."""

    def naive_utc(times) -> pd.Series:
        return pd.Series(pd.to_datetime(times, utc=True)).dt.tz_localize(None)

    return pd.DataFrame(
        {
            "session_date": pd.Series(pd.DatetimeIndex(days).date, dtype=object),
            "open_utc": naive_utc(opens).to_numpy(),
            "close_utc": naive_utc(closes).to_numpy(),
            "provisional": pd.Series([provisional] * len(days), dtype=bool),
        },
        columns=COLUMNS,
    )


def _recent_sessions(market: str, now: datetime) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The market's sessions around ``now`` and ``now`` as a naive UTC timestamp."""
    window = sessions(
        markets()[market].calendar,
        (now - timedelta(days=15)).date(),
        now.date() + timedelta(days=2),
    )
    return window, pd.Timestamp(now).tz_convert("UTC").tz_localize(None)


def last_closed_session(market: str, now: datetime) -> date | None:
    """The market's last session that has closed by ``now``, whether or not another has begun:
    every session up to it is in the past, and can be fetched as history."""
    window, now_utc = _recent_sessions(market, now)
    closed = window[window["close_utc"] <= now_utc]
    return None if closed.empty else closed["session_date"].iloc[-1]


def latest_completed_session(market: str, now: datetime) -> date | None:
    """The market's last session that has closed by ``now``, if no later session has begun:
    the session an undated snapshot taken now describes."""
    window, now_utc = _recent_sessions(market, now)
    closed = window[window["close_utc"] <= now_utc]
    begun = window[window["open_utc"] - PRE_OPEN <= now_utc]
    if closed.empty or len(begun) > len(closed):
        return None
    return closed["session_date"].iloc[-1]


def closed_sessions(market: str, start: date, end: date, now: datetime) -> list[date]:
    """The market's sessions in ``[start, end)`` that have closed by ``now``."""
    if start >= end:
        return []
    window = sessions(markets()[market].calendar, start, end)
    now_utc = pd.Timestamp(now).tz_convert("UTC").tz_localize(None)
    return list(window.loc[window["close_utc"] <= now_utc, "session_date"])
