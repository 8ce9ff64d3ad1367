"""The daily schedule (running by default, unless switched off) and the retries of its job's
steps: transient errors are retried, deterministic ones fail at once."""

import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import psycopg
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    Output,
    RetryPolicy,
    RetryRequested,
    RunRequest,
    SkipReason,
    asset,
    build_schedule_context,
    define_asset_job,
)

from coinmarket_assets.definitions import defs
from coinmarket_assets.retries import TRANSIENT_ERROR_RETRIES, fail_without_retry_unless_transient
from coinmarket_assets.schedules import daily_market_schedule
from coinmarket_assets.settings import load_time_settings
from coinmarket_assets.storage.tables import DAILY_TABLES
from coinmarket_assets_tests.dagster_cli import python_in_fresh_process
from coinmarket_assets_tests.dagster_runs import PARTITIONED_ASSETS, dump_all, materialize_days

PROJECT = Path(__file__).resolve().parents[1]


def _in_fresh_process(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return python_in_fresh_process(code, env, without_prefix="COINMARKET_SCHEDULE")


SCHEDULES = (
    "from coinmarket_assets.schedules import daily_market_schedule as s, "
    "freshness_check_schedule as f; "
    "print(s.default_status.value, f.default_status.value, repr(s.cron_schedule))"
)


def test_the_schedules_run_by_default():
    loaded = _in_fresh_process(SCHEDULES)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "RUNNING RUNNING '30 0 * * *'"


@pytest.mark.parametrize("value", ["false", "off", "0", "No"])
def test_the_schedules_can_be_stopped_by_default(value: str):
    loaded = _in_fresh_process(SCHEDULES, COINMARKET_SCHEDULE_ENABLED=value)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "STOPPED STOPPED '30 0 * * *'"


@pytest.mark.parametrize(("value", "cron"), [(" ", "30 0 * * *"), (" 0 3 * * 1 ", "0 3 * * 1")])
def test_the_cron_expression_is_read_at_load_and_blank_means_the_default(value: str, cron: str):
    loaded = _in_fresh_process(SCHEDULES, COINMARKET_SCHEDULE_CRON=value)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == f"RUNNING RUNNING {cron!r}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COINMARKET_SCHEDULE_ENABLED", "sometimes"),
        ("COINMARKET_SCHEDULE_CRON", "daily"),
        ("COINMARKET_SCHEDULE_CRON", "* * *"),
    ],
)
def test_an_invalid_schedule_setting_fails_loading_naming_it(name: str, value: str):
    loaded = _in_fresh_process(SCHEDULES, **{name: value})
    assert loaded.returncode != 0
    assert f"{name} must be " in loaded.stderr


def test_the_schedule_requests_the_day_that_ended_and_the_resync_days(monkeypatch):
    monkeypatch.setenv("COINMARKET_RESYNC_DAYS", "3")
    tick = build_schedule_context(scheduled_execution_time=datetime(2020, 7, 19, 0, 30, tzinfo=UTC))
    (request,) = daily_market_schedule.evaluate_tick(tick).run_requests
    assert request.run_key == "2020-07-18"
    assert request.tags["dagster/asset_partition_range_start"] == "2020-07-15"
    assert request.tags["dagster/asset_partition_range_end"] == "2020-07-18"


def test_in_top_n_mode_the_daily_run_stores_the_listing_and_then_its_members_candles(
    monkeypatch: pytest.MonkeyPatch,
):
    """The schedule's run materializes every daily table, historical_listings included and
    upstream of the candles: a coin entering the top N on the newest day is a member in the
    listing the same run stores, and the candle step fetches it with its lookback. The request
    overrides no setting, so the run reads COINMARKET_TICKERS=top:N."""
    job = defs.resolve_job_def("daily_market_data")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert selected == {*DAILY_TABLES, "ranked_coin_chart"}
    assert "historical_listings" in selected
    candles = job.asset_layer.asset_graph.get(AssetKey("historical_trade_data"))
    assert AssetKey("historical_listings") in candles.parent_keys

    monkeypatch.setenv("COINMARKET_TICKERS", "top:100")
    monkeypatch.setenv("COINMARKET_RESYNC_DAYS", "3")
    tick = build_schedule_context(scheduled_execution_time=datetime(2020, 7, 19, 0, 30, tzinfo=UTC))
    (request,) = daily_market_schedule.evaluate_tick(tick).run_requests
    assert request.run_config == {}
    assert request.tags["dagster/asset_partition_range_start"] == "2020-07-15"
    assert request.tags["dagster/asset_partition_range_end"] == "2020-07-18"


def _tick_on(day: date) -> RunRequest | SkipReason:
    when = datetime.combine(day, time(0, 30), tzinfo=UTC)
    return daily_market_schedule(build_schedule_context(scheduled_execution_time=when))


def test_the_schedule_skips_days_before_the_start_date_and_clips_the_resync_days(monkeypatch):
    monkeypatch.setenv("COINMARKET_RESYNC_DAYS", "3")
    start = load_time_settings().start_date  # read when the code location loaded, as the UI's
    assert isinstance(_tick_on(start), SkipReason)  # the day that ended is the day before
    request = _tick_on(start + timedelta(days=2))
    assert isinstance(request, RunRequest)
    assert request.tags["dagster/asset_partition_range_start"] == start.isoformat()


def test_every_step_of_the_daily_job_retries_transient_errors():
    job = defs.resolve_job_def("daily_market_data")
    policies = {node.name: node.definition.retry_policy for node in job.graph.node_dict.values()}
    steps = [*PARTITIONED_ASSETS, "ranked_coin_chart"]
    assert {step: policies[step] for step in steps} == dict.fromkeys(steps, TRANSIENT_ERROR_RETRIES)
    assert TRANSIENT_ERROR_RETRIES.max_retries == 2


def _attempts(error: Exception, *, generator: bool = False) -> tuple[int, bool]:
    """How often a step raising ``error`` on its first attempt runs (with the project's error
    handling and a retry policy without delay), and whether the run succeeds."""
    calls: list[int] = []

    def plain() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return 1

    def generating() -> Iterator[Output[int]]:
        yield Output(plain())

    fn = generating if generator else plain
    fn.__name__ = "flaky"
    flaky = asset(retry_policy=RetryPolicy(max_retries=2))(fail_without_retry_unless_transient(fn))
    job = define_asset_job("flaky_job", selection=[flaky.key])
    result = (
        Definitions(assets=[flaky], jobs=[job])
        .resolve_job_def("flaky_job")
        .execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)
    )
    return len(calls), result.success


@pytest.mark.parametrize("generator", [False, True])
@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("connection to server failed: Connection refused"),
        ConnectionResetError("connection reset by peer"),
        TimeoutError("timed out"),
    ],
)
def test_transient_errors_are_retried(error: Exception, generator: bool):
    assert _attempts(error, generator=generator) == (2, True)


@pytest.mark.parametrize("generator", [False, True])
@pytest.mark.parametrize(
    "error",
    [
        ValueError("BETA 2020-02-03: close is not a number ('nan')"),
        KeyError("coin_id"),
        psycopg.OperationalError('password authentication failed for user "x"'),
        RuntimeError("retry budget exhausted"),
    ],
)
def test_deterministic_errors_fail_at_once(error: Exception, generator: bool):
    assert _attempts(error, generator=generator) == (1, False)


def test_a_retry_the_asset_requests_itself_is_not_turned_into_a_failure():
    # historical_trade_data asks for retries (6, 10 minutes apart) while a candle is unpublished.
    assert _attempts(RetryRequested(max_retries=1)) == (2, True)


def test_unknown_tickers_fail_the_run_once_without_retries(
    database_url: str, csv_source: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_TICKERS", "ALPHA,NOPE")
    result = materialize_days("2020-01-01", "2020-01-31", raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "historical_trade_data"
    user_failure = failure.step_failure_data.user_failure_data
    assert user_failure is not None
    assert user_failure.description == (
        "UnknownTickersError: Unknown tickers (not listed by the source): NOPE"
    )
    retries = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries == []
    assert all(not dump for dump in dump_all(database_url).values())
