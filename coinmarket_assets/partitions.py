"""The daily (UTC) partitions shared by every partitioned asset, and their asset decorator."""

import warnings
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy, DailyPartitionsDefinition, asset

from coinmarket_assets.settings import load_settings

# Single-run backfill policies and lookbacks over not-yet-existing partitions are marked beta;
# the graph relies on both deliberately, so the warnings would only be noise in every run's log.
warnings.filterwarnings("ignore", message=r".*(backfill_policy|allow_nonexistent_upstream).*beta")

# Partition D is the candle of UTC day D; the newest partition is the last completed day.
daily_partitions = DailyPartitionsDefinition(
    start_date=load_settings().start_date.isoformat(), end_offset=0
)


def daily_table_asset(**kwargs: Any) -> Callable[..., Any]:
    """``@asset`` for a daily table: any range of days is one run, stored by the IO manager."""
    return asset(
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="postgres_io_manager",
        kinds={"postgres", "pandas"},
        metadata={"partition_expr": "trade_date"},
        **kwargs,
    )


def run_days(context: AssetExecutionContext) -> tuple[date, date]:
    """The first and last day (inclusive) of the partitions a run materializes."""
    window = context.partition_time_window
    return window.start.date(), window.end.date() - timedelta(days=1)
