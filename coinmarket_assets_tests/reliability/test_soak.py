"""Soak: thirty consecutive simulated days of the daily schedule on one Dagster instance, with one
injected source failure and its retry; every day is stored once, and neither open database
connections nor the process's memory grow from the first day to the last."""

import ctypes
import gc
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import sleep

import pandas as pd
import psutil
import psycopg
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    JobDefinition,
    JobExecutionResult,
    ReexecutionOptions,
    RunRequest,
    build_schedule_context,
    execute_job,
    in_process_executor,
    reconstructable,
)
from dagster._core.storage.tags import RETRY_NUMBER_TAG

from coinmarket_assets.definitions import defs
from coinmarket_assets.schedules import daily_market_schedule, partition_range_tags
from coinmarket_assets.storage.tables import TABLES
from coinmarket_assets_tests.dagster_runs import dump_table, failure_messages, read_table
from coinmarket_assets_tests.table_checks import assert_derived_tables_match_references
from coinmarket_testkit.synthetic import FIELDS, SyntheticMarket, write_daily_csv

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"

# The default market runs 2020-01-01..2020-07-18. History up to SEED_LAST is stored by one
# ranged run; the thirty scheduled days then cover ALPHA's one-day gap (2020-03-31), the day after
# which ALPHA has no 5-day return (2020-04-05), and LATE's listing (2020-04-10), whose first
# return and full RSI window arrive during the soak.
MARKET_FIRST = date(2020, 1, 1)
SEED_LAST = date(2020, 3, 20)
SOAK_DAYS = 30
FIRST_DAY = SEED_LAST + timedelta(days=1)
LAST_DAY = FIRST_DAY + timedelta(days=SOAK_DAYS - 1)
RESYNC_DAYS = 3
RETURN_DAYS = 5
RANK_SIZE = 5

# The source publishes a malformed candle on this day (BETA's close left empty); the run fails,
# then the publisher corrects the line and the retry of the same request completes the day.
FAILING_DAY = date(2020, 4, 11)
# The steps that fetch context, not candles: they succeed in the failing run.
CONTEXT_TABLES = ("historical_listings", "global_metrics")
FAILING_TICKER = "BETA"

CONNECTION_SAMPLES = 10
CONNECTION_SAMPLE_INTERVAL_SECONDS = 0.05
# Imports, caches and pools settle during the first half: on a loaded machine RSS rose in steps
# until about day 15 and then stayed flat (2026-11-30: +24 MB by day 15, -4 MB from day 15 to
# day 30). A leak grows in the second half too.
WARM_UP_DAYS = 15
# Far above the second half's noise, and it still catches a leak of 1 MB or more per day.
RSS_GROWTH_LIMIT_MB = 15.0
PARTITIONED_TABLES = [table for table in TABLES if table != "currency_status"]


# The code location's assets, checks, jobs and resources, with the in-process executor: every
# run executes in this process, so the RSS measured below is the memory of the runs themselves,
# not of short-lived step processes (the code location's executor forks a process per step, and
# ignores an ``execution`` entry of the run config). Built once: its jobs are resolved once.
IN_PROCESS_DEFS = Definitions(
    assets=defs.assets,
    asset_checks=defs.asset_checks,
    jobs=defs.jobs,
    resources=defs.resources,
    executor=in_process_executor,
)


def _daily_market_job() -> JobDefinition:
    """The schedule's job, its steps run in this process, for ``reconstructable``."""
    return IN_PROCESS_DEFS.resolve_job_def("daily_market_data")


# The console shows warnings only, so that the measured figures stand out in the log of 32 runs
# (events are still stored).
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class SoakMeasurements:
    connections: dict[date, int] = field(default_factory=dict)
    rss_mb: dict[date, float] = field(default_factory=dict)
    objects: dict[date, int] = field(default_factory=dict)


class PublishedMarket:
    """A ``csv:`` source directory to which the market's candles are published day by day, as
    CoinMarketCap publishes each day's candle after the midnight that ends it."""

    def __init__(self, market: SyntheticMarket, directory: Path, through: date) -> None:
        self.market = market
        self.directory = directory
        (directory / "daily").mkdir(parents=True)
        market.write_coins_csv(directory)
        for coin in market.coins:
            write_daily_csv(
                self._path(coin.ticker), coin.candles[coin.candles["date"] <= pd.Timestamp(through)]
            )

    def _path(self, ticker: str) -> Path:
        return self.directory / "daily" / f"{ticker}.csv"

    def _line(self, candle: pd.Series) -> str:
        # The same text as synthetic.write_daily_csv: repr round-trips every float exactly.
        return f"{candle['date']:%Y-%m-%d}," + ",".join(repr(float(candle[f])) for f in FIELDS)

    def publish(self, day: date, corrupt_ticker: str | None = None) -> None:
        """Appends each coin's candle of ``day`` (coins with a gap or not yet listed have none);
        ``corrupt_ticker``'s line is published with an empty close."""
        for coin in self.market.coins:
            candles = coin.candles[coin.candles["date"] == pd.Timestamp(day)]
            for _, candle in candles.iterrows():
                line = self._line(candle)
                if coin.ticker == corrupt_ticker:
                    line = self._with_empty_close(line)
                with self._path(coin.ticker).open("a") as file:
                    file.write(line + "\n")

    def correct(self, day: date, ticker: str) -> None:
        """Replaces the ticker's published line of ``day`` with the true candle."""
        coin = self.market.coin(ticker)
        (candle,) = [c for _, c in coin.candles.iterrows() if c["date"] == pd.Timestamp(day)]
        path = self._path(ticker)
        lines = path.read_text().splitlines()
        lines = [self._line(candle) if ln.startswith(f"{day:%Y-%m-%d},") else ln for ln in lines]
        path.write_text("\n".join(lines) + "\n")

    @staticmethod
    def _with_empty_close(line: str) -> str:
        values = line.split(",")
        values[1 + FIELDS.index("close")] = ""
        return ",".join(values)


@pytest.fixture
def instance(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DagsterInstance]:
    """The project's own instance (dagster.yaml): runs, events and concurrency slots stored in
    schema ``dagster`` of the test database, over the pooled engines the pipeline uses. The soak
    thus covers Dagster's bookkeeping in PostgreSQL, and its connections are counted below."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # Recorded as unset, so the batch size the storage exports is undone after the test.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "unset")
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")
    with DagsterInstance.get() as dagster_instance:
        yield dagster_instance


def _client_connections(url: str) -> int:
    """Client connections to the test database that stay open, other than this query's own.

    Only ``client backend`` rows: autovacuum workers also carry the database's name and come and
    go with the soak's writes. The fewest of several samples over half a second: a backend leaves
    pg_stat_activity only when its process exits, a moment after the client closed the
    connection, so a connection the run has just closed can still be listed; a leaked one is
    listed in every sample.
    """
    samples = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(CONNECTION_SAMPLES):
            (count,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
            samples.append(count)
            sleep(CONNECTION_SAMPLE_INTERVAL_SECONDS)
    return min(samples)


# glibc's M_ARENA_MAX: without a cap, threads that contend for the allocator (more of them on a
# loaded machine) each get a new heap arena, and RSS grows with the machine's load, not with
# what the runs keep (seen: +23 MB under load, +1 to +7 MB on a quiet machine).
M_ARENA_MAX = -8


def _cap_allocator_arenas() -> None:
    ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 2)


def _rss_mb() -> float:
    gc.collect()  # count what is still referenced, not garbage awaiting collection
    # Likewise, glibc's free pages go back to the system: without this, the heaps of the threads
    # that ran steps grow by fragmentation alone (measured: +10 to +16 MB over the thirty days, and
    # +1 MB with it). Memory still referenced is never released, so a leak still shows.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return psutil.Process().memory_info().rss / 2**20


def _tick(instance: DagsterInstance, day: date) -> RunRequest:
    """The schedule's tick at 00:30 UTC after ``day`` ends, as the daemon evaluates it."""
    context = build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.combine(day + timedelta(days=1), time(0, 30), UTC),
    )
    (request,) = daily_market_schedule.evaluate_tick(context).run_requests
    assert request.run_key == day.isoformat()
    assert request.tags["dagster/asset_partition_range_start"] == str(day - timedelta(RESYNC_DAYS))
    assert request.tags["dagster/asset_partition_range_end"] == day.isoformat()
    return request


def _run(instance: DagsterInstance, tags: dict[str, str]) -> JobExecutionResult:
    return execute_job(
        reconstructable(_daily_market_job), instance, run_config=QUIET_CONSOLE, tags=tags
    )


def _retry_from_failure(instance: DagsterInstance, failed_run_id: str) -> JobExecutionResult:
    """What Dagster's run retries do with a failed run: re-execute it from failure (the failed
    step and everything it skipped) with the parent run's tags and a retry number."""
    parent = instance.get_run_by_id(failed_run_id)
    assert parent is not None
    return execute_job(
        reconstructable(_daily_market_job),
        instance,
        run_config=QUIET_CONSOLE,
        tags={**parent.tags, RETRY_NUMBER_TAG: "1"},
        reexecution_options=ReexecutionOptions.from_failure(failed_run_id, instance),
    )


def _full_dump(url: str) -> dict[str, bytes]:
    """Every data table, bookkeeping timestamps included: a rewritten row changes fetched_at."""
    return {table: dump_table(url, table) for table in TABLES}


def _materialized(result: JobExecutionResult) -> set[tuple[str, str | None]]:
    return {
        (event.asset_key.path[-1], event.partition)
        for event in result.get_asset_materialization_events()
    }


def _rows_per_day(url: str, table: str) -> dict[date, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT trade_date, count(*) FROM {table} WHERE trade_date BETWEEN %s AND %s "
            "GROUP BY trade_date",
            [FIRST_DAY, LAST_DAY],
        ).fetchall()
    return dict(rows)


def _expected_rows_per_day(market: SyntheticMarket) -> dict[str, dict[date, int]]:
    """Per soak day, from the market alone: a candle and a rolling row per coin with a candle;
    a return per coin with a candle on D and on D - 5 (no close is zero in this market); up to
    RANK_SIZE ranked coins among those with a return."""
    candles = market.candles()
    days_of = {
        coin_id: {ts.date() for ts in group["trade_date"]}
        for coin_id, group in candles.groupby("coin_id")
    }
    assert (candles["close"] != 0).all()
    expected: dict[str, dict[date, int]] = {table: {} for table in PARTITIONED_TABLES}
    for offset in range(SOAK_DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        with_candle = sum(day in days for days in days_of.values())
        earlier = day - timedelta(days=RETURN_DAYS)
        with_return = sum(day in days and earlier in days for days in days_of.values())
        expected["historical_trade_data"][day] = with_candle
        expected["historical_rolling"][day] = with_candle
        expected["period_returns"][day] = with_return
        expected["top_ranking"][day] = min(RANK_SIZE, with_return)
        expected["bottom_ranking"][day] = min(RANK_SIZE, with_return)
    return expected


@pytest.mark.slow
def test_thirty_scheduled_days_with_a_failed_and_retried_day_store_every_day_once_without_growth(
    database_url: str,
    instance: DagsterInstance,
    market: SyntheticMarket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """History is seeded first (2020-01-01..2020-03-20, one ranged run on the same instance) so
    that the soak days of the four early coins have full RSI, std-dev and return windows and the
    daily runs read their lookbacks from a populated table, as in production; LATE, listed
    mid-soak, still covers windows filling up. Before each tick the source publishes only the
    candles of the day that just ended, so each run sees what it would see that night; each run
    also re-fetches the 3 days before it, so every day is written four times and must still be
    stored once."""
    _cap_allocator_arenas()
    source = PublishedMarket(market, tmp_path / "cmc", through=SEED_LAST)
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{source.directory}")
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join(market.tickers))
    monkeypatch.setenv("COINMARKET_RESYNC_DAYS", str(RESYNC_DAYS))
    monkeypatch.setenv("COINMARKET_ON_BAD_ROWS", "fail")

    seed = _run(
        instance,
        partition_range_tags(MARKET_FIRST.isoformat(), SEED_LAST.isoformat()),
    )
    assert seed.success
    # Its steps ran here, so the memory measured below is theirs.
    assert {event.pid for event in seed.all_events} == {os.getpid()}

    measured = SoakMeasurements()
    failed_run_id = retry_run_id = None
    for offset in range(SOAK_DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        if day != FAILING_DAY:
            source.publish(day)
            result = _run(instance, dict(_tick(instance, day).tags))
            assert result.success, f"{day}: {failure_messages(result)}"
        else:
            source.publish(day, corrupt_ticker=FAILING_TICKER)
            request = _tick(instance, day)
            before = _full_dump(database_url)
            failed = _run(instance, dict(request.tags))
            assert not failed.success
            assert f"{FAILING_TICKER} {day}: close is missing" in failure_messages(failed)
            # The other coins' valid candles of the day are not stored either: a day is whole,
            # and the resynced days before it keep their rows (fetched_at included).
            assert _full_dump(database_url) == before
            # The context steps (listings, global metrics) ran beside the candles (this market
            # has neither file, so they stored none); nothing downstream was materialized.
            materialized = {e.asset_key.path[-1] for e in failed.get_asset_materialization_events()}
            assert materialized <= set(CONTEXT_TABLES)
            failed_run_id = failed.run_id

            source.correct(day, FAILING_TICKER)
            retried = _retry_from_failure(instance, failed_run_id)
            assert retried.success, failure_messages(retried)
            # The failed step and every step it skipped ran again, for every requested day (not
            # the context steps, which had succeeded).
            assert _materialized(retried) == {
                (table, (day - timedelta(days=n)).isoformat())
                for table in [*PARTITIONED_TABLES, "ranked_coin_chart"]
                if table not in CONTEXT_TABLES
                for n in range(RESYNC_DAYS + 1)
            }
            retry_run_id = retried.run_id
        measured.connections[day] = _client_connections(database_url)
        measured.rss_mb[day] = _rss_mb()
        measured.objects[day] = len(gc.get_objects())

    print("\nopen client connections after each day:", list(measured.connections.values()))
    print("RSS (MB) after each day:", [round(mb, 1) for mb in measured.rss_mb.values()])
    # Diagnostic only: Python objects alive, to tell a leak of objects from allocator noise.
    print("objects tracked by gc after each day:", list(measured.objects.values()))

    _assert_dagster_bookkeeping(instance, failed_run_id, retry_run_id)
    _assert_every_day_stored_once(database_url, market)
    _assert_no_growth(measured)


def _assert_dagster_bookkeeping(
    instance: DagsterInstance, failed_run_id: str | None, retry_run_id: str | None
) -> None:
    """One run per tick plus the seed, the failure and its retry, linked as Dagster links them;
    every soak day materialized for every asset."""
    assert failed_run_id and retry_run_id
    statuses = {run.run_id: run.status for run in instance.get_runs()}
    assert len(statuses) == 1 + SOAK_DAYS + 1
    assert statuses.pop(failed_run_id) == DagsterRunStatus.FAILURE
    assert set(statuses.values()) == {DagsterRunStatus.SUCCESS}
    retry = instance.get_run_by_id(retry_run_id)
    assert retry is not None
    assert retry.parent_run_id == failed_run_id
    assert retry.tags[RETRY_NUMBER_TAG] == "1"
    assert retry.tags["dagster/asset_partition_range_end"] == FAILING_DAY.isoformat()

    soak_days = {(FIRST_DAY + timedelta(days=n)).isoformat() for n in range(SOAK_DAYS)}
    for table in PARTITIONED_TABLES:
        materialized = instance.get_materialized_partitions(AssetKey(table))
        assert soak_days <= materialized, table


def _assert_every_day_stored_once(url: str, market: SyntheticMarket) -> None:
    # The primary keys forbid duplicates; this states the requirement independently of them.
    with psycopg.connect(url) as conn:
        for table in PARTITIONED_TABLES:
            key = ", ".join(TABLES[table].primary_key)
            (duplicates,) = conn.execute(
                f"SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY {key} "
                "HAVING count(*) > 1) d"
            ).fetchone()
            assert duplicates == 0, table

    # The stored candles are exactly the market's, for the soak days and the seeded history.
    stored = read_table("historical_trade_data")
    expected = market.candles()
    expected = expected[expected["trade_date"] <= pd.Timestamp(LAST_DAY)]
    expected = expected.sort_values(["coin_id", "trade_date"], ignore_index=True)
    pd.testing.assert_frame_equal(
        stored[expected.columns], expected, check_exact=True, check_dtype=False
    )
    assert set(stored["source"]) == {"csv"}

    expected_rows = _expected_rows_per_day(market)
    for table, per_day in expected_rows.items():
        assert _rows_per_day(url, table) == {d: n for d, n in per_day.items() if n}, table

    # The values, against the independent references, over everything stored.
    assert_derived_tables_match_references(MARKET_FIRST.isoformat(), LAST_DAY.isoformat())


def _assert_no_growth(measured: SoakMeasurements) -> None:
    days = list(measured.connections)
    first, last = measured.connections[days[0]], measured.connections[days[-1]]
    print(f"connections: after day 1 {first}, after day {SOAK_DAYS} {last}")
    # Dagster's pooled engines each keep at most one idle connection, the data tables' connections
    # are closed after each write or read: nothing may be left open from one day to the next.
    assert last <= first, measured.connections
    assert max(measured.connections.values()) <= first, measured.connections

    warm = measured.rss_mb[days[WARM_UP_DAYS - 1]]
    final = measured.rss_mb[days[-1]]
    print(
        f"RSS: after day {WARM_UP_DAYS} {warm:.1f} MB, after day {SOAK_DAYS} {final:.1f} MB, "
        f"growth {final - warm:+.1f} MB (limit {RSS_GROWTH_LIMIT_MB} MB)"
    )
    assert final - warm < RSS_GROWTH_LIMIT_MB, measured.rss_mb
