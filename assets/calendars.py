"""Exchange sessions from exchange-calendars: the only place that knows when markets trade."""

from datetime import date
from functools import cache

import exchange_calendars as xcals
import pandas as pd

CALENDAR_START = "2005-01-01"


@cache
def exchange_calendar(name: str) -> xcals.ExchangeCalendar:
    """The calendar, from 2005 to the last day the library knows (about a year ahead)."""
    return xcals.get_calendar(name, start=CALENDAR_START)


def sessions(calendar_name: str, start: date, end: date) -> pd.DataFrame:
    """Sessions with ``start <= session_date < end`` and their UTC open and close times.

    Dates beyond the calendar's last known day are not returned: the library cannot tell
    whether the exchange trades then, so such dates are treated as having no expected session.
    """
    calendar = exchange_calendar(calendar_name)
    first = max(pd.Timestamp(start), calendar.first_session)
    last = min(pd.Timestamp(end) - pd.Timedelta(days=1), calendar.last_session)
    columns = ["session_date", "open_utc", "close_utc"]
    if first > last:
        return pd.DataFrame(columns=columns)
    schedule = calendar.schedule.loc[first:last]
    return pd.DataFrame(
        {
            "session_date": schedule.index.date,
            "open_utc": schedule["open"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(),
            "close_utc": schedule["close"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(),
        },
        columns=columns,
    )
