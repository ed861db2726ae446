"""Report-date partitions: one per calendar day R, covering each market's sessions up to R-1."""

from dagster import AssetCheckExecutionContext, AssetExecutionContext, DailyPartitionsDefinition

from market_intel.storage import ReportWindow

# end_offset=1: today's report date exists as soon as the day starts (it reports yesterday).
report_dates = DailyPartitionsDefinition(start_date="2015-01-01", end_offset=1, timezone="UTC")


def report_window(context: AssetExecutionContext | AssetCheckExecutionContext) -> ReportWindow:
    """The run's report dates as a half-open window ``[start, end)``."""
    window = context.partition_time_window
    return ReportWindow(window.start.date(), window.end.date())
