"""The daily (UTC) partitions shared by every partitioned asset, and their asset decorator."""

import warnings
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    BackfillPolicy,
    DailyPartitionsDefinition,
    asset,
)

from coinmarket_assets.retries import TRANSIENT_ERROR_RETRIES, fail_without_retry_unless_transient
from coinmarket_assets.settings import load_time_settings
from coinmarket_assets.storage.tables import TABLES

# Single-run backfill policies and lookbacks over not-yet-existing partitions are marked beta;
# the graph relies on both deliberately, so the warnings would only be noise in every run's log.
warnings.filterwarnings("ignore", message=r".*(backfill_policy|allow_nonexistent_upstream).*beta")

# Partition D is the candle of UTC day D; the newest partition is the last completed day.
daily_partitions = DailyPartitionsDefinition(
    start_date=load_time_settings().start_date.isoformat(), end_offset=0
)


def backfill_policy(chunk_days: int | None) -> BackfillPolicy:
    """One run per backfill, or with ``COINMARKET_BACKFILL_CHUNK_DAYS=N`` one run per N days,
    so that a long backfill becomes parallel runs within the run coordinator's limits."""
    if chunk_days is None:
        return BackfillPolicy.single_run()
    return BackfillPolicy.multi_run(max_partitions_per_run=chunk_days)


# Read once at load time: every partitioned asset must have the same policy, or Dagster falls
# back to one run per partition.
DAILY_BACKFILL_POLICY = backfill_policy(load_time_settings().backfill_chunk_days)


# Every daily table's asset carries this tag: DAILY_TABLE_ASSETS selects them, in the UI too
# (``tag:coinmarket/daily_table``), and nothing else lists them.
DAILY_TABLE_TAG = "coinmarket/daily_table"
DAILY_TABLE_ASSETS = AssetSelection.tag(DAILY_TABLE_TAG, "")


def daily_table_asset(**kwargs: Any) -> Callable[..., Any]:
    """``@asset`` for a daily table of ``TABLES`` (named as the asset), stored by the IO manager:
    any range of days is one run (or one run per ``COINMARKET_BACKFILL_CHUNK_DAYS``); transient
    errors are retried. Its definition carries the table's column schema."""

    def decorate(fn: Callable[..., Any]) -> AssetsDefinition:
        table = TABLES[kwargs.get("name") or fn.__name__]
        if table.date_column is None:
            raise ValueError(f"{table.name} is not a daily table")
        return asset(
            partitions_def=daily_partitions,
            backfill_policy=DAILY_BACKFILL_POLICY,
            retry_policy=TRANSIENT_ERROR_RETRIES,
            io_manager_key="postgres_io_manager",
            kinds={"postgres", "pandas"},
            tags={DAILY_TABLE_TAG: ""},
            metadata=table.asset_metadata(),
            **kwargs,
        )(fail_without_retry_unless_transient(fn))

    return decorate


def days_between(first_day: date, last_day: date) -> list[date]:
    """Each day from first_day to last_day, both included."""
    return [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]


def run_days(context: AssetExecutionContext) -> tuple[date, date]:
    """The first and last day (inclusive) of the partitions a run materializes."""
    window = context.partition_time_window
    return window.start.date(), window.end.date() - timedelta(days=1)
