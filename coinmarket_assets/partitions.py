"""The daily (UTC) partitions shared by every partitioned asset, and their asset decorator."""

import os
import warnings
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DailyPartitionsDefinition,
    asset,
)

from coinmarket_assets.retries import TRANSIENT_ERROR_RETRIES, fail_without_retry_unless_transient
from coinmarket_assets.settings import env_value, load_settings

# Single-run backfill policies and lookbacks over not-yet-existing partitions are marked beta;
# the graph relies on both deliberately, so the warnings would only be noise in every run's log.
warnings.filterwarnings("ignore", message=r".*(backfill_policy|allow_nonexistent_upstream).*beta")

# Partition D is the candle of UTC day D; the newest partition is the last completed day.
daily_partitions = DailyPartitionsDefinition(
    start_date=load_settings().start_date.isoformat(), end_offset=0
)

BACKFILL_CHUNK_DAYS_ENV = "COINMARKET_BACKFILL_CHUNK_DAYS"


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def backfill_policy(env: dict[str, str] | None = None) -> BackfillPolicy:
    """One run per backfill, or with ``COINMARKET_BACKFILL_CHUNK_DAYS=N`` one run per N days,
    so that a long backfill becomes parallel runs within the run coordinator's limits."""
    env = dict(os.environ if env is None else env)
    chunk_days = env_value(env, BACKFILL_CHUNK_DAYS_ENV, None, _positive_int, "a whole number >= 1")
    if chunk_days is None:
        return BackfillPolicy.single_run()
    return BackfillPolicy.multi_run(max_partitions_per_run=chunk_days)


# Read once at load time: every partitioned asset must have the same policy, or Dagster falls
# back to one run per partition.
DAILY_BACKFILL_POLICY = backfill_policy()


def daily_table_asset(**kwargs: Any) -> Callable[..., Any]:
    """``@asset`` for a daily table, stored by the IO manager: any range of days is one run (or
    one run per ``COINMARKET_BACKFILL_CHUNK_DAYS``); transient errors are retried."""
    decorate = asset(
        partitions_def=daily_partitions,
        backfill_policy=DAILY_BACKFILL_POLICY,
        retry_policy=TRANSIENT_ERROR_RETRIES,
        io_manager_key="postgres_io_manager",
        kinds={"postgres", "pandas"},
        metadata={"partition_expr": "trade_date"},
        **kwargs,
    )
    return lambda fn: decorate(fail_without_retry_unless_transient(fn))


def run_days(context: AssetExecutionContext) -> tuple[date, date]:
    """The first and last day (inclusive) of the partitions a run materializes."""
    window = context.partition_time_window
    return window.start.date(), window.end.date() - timedelta(days=1)
