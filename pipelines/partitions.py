"""Report-date partitions: one per calendar day R, covering each market's sessions up to R-1."""

from collections.abc import Mapping
from datetime import date, timedelta

from dagster import AssetCheckExecutionContext, AssetExecutionContext, DailyPartitionsDefinition

from market_intel.settings import first_report_date
from market_intel.storage import ReportWindow

# Dagster's documented run tags of a one-partition run and of a range run (inclusive keys).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# The first report date the UI offers: where the data starts (MARKET_INTEL_FIRST_REPORT_DATE,
# market_intel/settings.py). end_offset=1: today's report date exists as soon as the day starts
# (it reports yesterday).
report_dates = DailyPartitionsDefinition(
    start_date=first_report_date(), end_offset=1, timezone="UTC"
)


def report_window(context: AssetExecutionContext | AssetCheckExecutionContext) -> ReportWindow:
    """The run's report dates as a half-open window ``[start, end)``.

    Read from the run's partition range, so the undated steps of a dated run (the asset checks,
    the dbt step's seeds and views) see the same window as the dated ones.
    """
    keys = context.partition_key_range
    return ReportWindow(date.fromisoformat(keys.start), date.fromisoformat(keys.end) + timedelta(1))


def run_window(
    context: AssetExecutionContext | AssetCheckExecutionContext,
) -> ReportWindow | None:
    """The run's window of report dates, or None for a run without any (e.g. seeds alone, or a
    check launched on its own). Read from the run's tags, so an undated step (the fact checks)
    and a step of dated and undated assets (dbt) see the same window."""
    return window_from_tags(context.run.tags)


def window_from_tags(tags: Mapping[str, str]) -> ReportWindow | None:
    """``[start, end)`` from Dagster's partition tags: a one-date run's or a range run's."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        start, last = tags[RANGE_START_TAG], tags[RANGE_END_TAG]
    elif PARTITION_TAG in tags:
        start = last = tags[PARTITION_TAG]
    else:
        return None
    return ReportWindow(date.fromisoformat(start), date.fromisoformat(last) + timedelta(days=1))
