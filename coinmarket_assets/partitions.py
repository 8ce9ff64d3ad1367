"""The daily (UTC) partitions shared by every partitioned asset, and their asset decorator."""

import functools
import inspect
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import requests
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Backoff,
    DagsterError,
    DailyPartitionsDefinition,
    Failure,
    Jitter,
    RetryPolicy,
    RetryRequested,
    asset,
)

from coinmarket_assets.settings import env_value, load_settings
from coinmarket_assets.storage.database import is_lost_connection

# Single-run backfill policies and lookbacks over not-yet-existing partitions are marked beta;
# the graph relies on both deliberately, so the warnings would only be noise in every run's log.
warnings.filterwarnings("ignore", message=r".*(backfill_policy|allow_nonexistent_upstream).*beta")

# Partition D is the candle of UTC day D; the newest partition is the last completed day.
daily_partitions = DailyPartitionsDefinition(
    start_date=load_settings().start_date.isoformat(), end_offset=0
)

BACKFILL_CHUNK_DAYS_ENV = "COINMARKET_BACKFILL_CHUNK_DAYS"

# A step that failed for a transient reason (the database or the network went away for longer
# than the IO manager's and the client's own retries wait) runs again after about 30 s, then
# about 90 s. Every other error fails the step at once: see ``fail_without_retry_unless_transient``.
TRANSIENT_ERROR_RETRIES = RetryPolicy(
    max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


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


def is_transient(error: Exception) -> bool:
    """Whether ``error`` may go away by itself: the database or a network peer was unreachable.

    A ``SourceError`` is never transient here: the CoinMarketCap client has already retried
    within its budget, and retrying the step would spend that budget again.
    """
    return is_lost_connection(error) or isinstance(
        error, ConnectionError | TimeoutError | requests.ConnectionError | requests.Timeout
    )


@contextmanager
def _no_retry_unless_transient() -> Iterator[None]:
    try:
        yield
    except (RetryRequested, Failure, DagsterError):
        raise
    except Exception as error:
        if is_transient(error):
            raise
        # Bad data, unknown tickers, invalid settings and bugs fail the same way on every
        # attempt; Dagster skips the retry policy for a Failure that disallows retries.
        raise Failure(
            description=f"{type(error).__name__}: {error}", allow_retries=False
        ) from error


def fail_without_retry_unless_transient(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a plain or generator asset function), raising every non-transient error as a
    ``dagster.Failure`` that the retry policy does not retry."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with _no_retry_unless_transient():
                yield from fn(*args, **kwargs)

        return generator

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any) -> Any:
        with _no_retry_unless_transient():
            return fn(*args, **kwargs)

    return function


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
