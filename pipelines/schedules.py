"""When ``market_intel_job`` runs by itself: once a day, when every session of the new report
date has closed (docs/operations.md, "The daily schedule").

The report for R covers each market's sessions up to R-1, and the last of them to close is
crypto's UTC day R-1, which ends at 00:00 UTC on R: hours after the US close (16:00 New York =
20:00 UTC in summer, 21:00 UTC in winter). The schedule therefore runs in UTC, at 00:20: 20
minutes after the crypto day, 3h20 (summer) or 4h20 (winter) after the US close, and before the
A-share pre-open auction (09:15 Shanghai = 01:15 UTC), while the live A-share breadth snapshot
still shows session R-1. A UTC clock does not move with daylight saving time, so neither do
these margins. The partition key is computed from the tick, not taken from the UTC date blindly:
``latest_complete_report_date`` returns the latest report date whose sessions, by every
market's exchange calendar, have all closed at the tick.
"""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from market_intel import calendars
from market_intel.universe import markets

JOB_NAME = "market_intel_job"
DAILY_CRON = "20 0 * * *"
DAILY_TIMEZONE = "UTC"
# Why a run was requested (the late-data sensor retries only what the schedule started) and
# which attempt it is for its report date.
TRIGGER_TAG = "market_intel/trigger"
ATTEMPT_TAG = "market_intel/attempt"
SCHEDULE_TRIGGER = "schedule"
# Daily runs claim the DuckDB pool before the pending steps of a long backfill (higher first).
PRIORITY_TAG = "dagster/priority"
DAILY_PRIORITY = "10"
# How far back the search for a complete report date may go: a session closes within a day of
# its date, so the answer is the tick's UTC date or the day before; more means broken calendars.
MAX_DAYS_BACK = 7


def latest_complete_report_date(tick: datetime, calendar_names: list[str] | None = None) -> date:
    """The latest report date R whose sessions (each market's session R-1, if any) closed by ``tick``.

    R is at most the UTC date of ``tick``: later report dates are not partitions yet
    (``report_dates`` ends with today's UTC date). Calendars default to the universe's markets.
    """
    if tick.tzinfo is None:
        raise ValueError("tick must be timezone-aware")
    now = pd.Timestamp(tick).tz_convert("UTC").tz_localize(None)
    names = calendar_names or sorted({market.calendar for market in markets().values()})
    candidate = now.date()
    for _ in range(MAX_DAYS_BACK):
        session_day = candidate - timedelta(days=1)
        if all(_closed_by(name, session_day, now) for name in names):
            return candidate
        candidate = session_day
    raise ValueError(f"no report date completes by {tick}: check the calendars {names}")


def _closed_by(calendar_name: str, session_day: date, now: pd.Timestamp) -> bool:
    """True when ``session_day`` is no session of the calendar, or its session closed by ``now``."""
    session = calendars.sessions(calendar_name, session_day, session_day + timedelta(days=1))
    return session.empty or bool(session["close_utc"].iloc[0] <= now)


def daily_run_request(tick: datetime) -> RunRequest:
    """The run for the report date that ``tick`` completes; one per report date (run key)."""
    report_date = latest_complete_report_date(tick).isoformat()
    return RunRequest(
        run_key=f"daily-{report_date}",
        partition_key=report_date,
        tags={TRIGGER_TAG: SCHEDULE_TRIGGER, ATTEMPT_TAG: "1", PRIORITY_TAG: DAILY_PRIORITY},
    )


@schedule(
    name="market_intel_daily",
    job_name=JOB_NAME,
    cron_schedule=DAILY_CRON,
    execution_timezone=DAILY_TIMEZONE,
    # Off until someone starts it (UI: Automation, or `dagster schedule start`): by default the
    # source is live, and a fresh clone or a laptop should not begin pulling public APIs daily.
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every day at 00:20 UTC: feeds, facts, gate and report for the report date whose "
    "sessions have just all closed (crypto's UTC day ends at 00:00 UTC, after every exchange).",
)
def market_intel_daily(context: ScheduleEvaluationContext) -> RunRequest:
    tick = context.scheduled_execution_time or datetime.now(UTC)
    return daily_run_request(tick)


schedules: list[ScheduleDefinition] = [market_intel_daily]
