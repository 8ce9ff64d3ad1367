"""The daily (UTC) partitions shared by every partitioned asset."""

from datetime import date, timedelta

from dagster import AssetExecutionContext, DailyPartitionsDefinition

from coinmarket_assets.settings import load_settings

# Partition D is the candle of UTC day D; the newest partition is the last completed day.
daily_partitions = DailyPartitionsDefinition(
    start_date=load_settings().start_date.isoformat(), end_offset=0
)


def run_days(context: AssetExecutionContext) -> tuple[date, date]:
    """The first and last day (inclusive) of the partitions a run materializes."""
    window = context.partition_time_window
    return window.start.date(), window.end.date() - timedelta(days=1)
