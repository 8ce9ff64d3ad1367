"""The daily run: shortly after each UTC midnight, the day that just ended and a few before it."""

import os
from datetime import timedelta

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInvalidDefinitionError,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from coinmarket_assets.settings import SettingsError, env_value, load_settings

SCHEDULE_ENABLED_ENV = "COINMARKET_SCHEDULE_ENABLED"
SCHEDULE_CRON_ENV = "COINMARKET_SCHEDULE_CRON"
DEFAULT_CRON = "30 0 * * *"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
_FLAGS = dict.fromkeys(("true", "yes", "on", "1"), True) | dict.fromkeys(
    ("false", "no", "off", "0"), False
)

PARTITIONED_ASSETS = AssetSelection.assets(
    "historical_trade_data", "historical_rolling", "period_returns", "top_ranking", "bottom_ranking"
)

DAILY_CHART = AssetSelection.assets("ranked_coin_chart")
FRESHNESS_CHECK = AssetSelection.checks(
    AssetCheckKey(AssetKey("historical_trade_data"), "fresh_candles")
)

daily_market_job = define_asset_job(
    "daily_market_data",
    selection=PARTITIONED_ASSETS | DAILY_CHART,
    description="Candles, statistics, rankings and the chart of a range of days, in one run.",
)

freshness_check_job = define_asset_job(
    "freshness_check",
    selection=FRESHNESS_CHECK,
    description="Whether the newest stored candle closed at most 36 hours ago; loads no table.",
)


def _parse_flag(raw: str) -> bool:
    if raw.lower() not in _FLAGS:
        raise ValueError(raw)
    return _FLAGS[raw.lower()]


def env_flag(name: str, default: bool, env: dict[str, str] | None = None) -> bool:
    """The yes/no variable ``name`` (true/false, yes/no, on/off, 1/0), ``default`` when unset."""
    env = dict(os.environ if env is None else env)
    return env_value(env, name, default, _parse_flag, "true or false")


def schedule_cron(env: dict[str, str] | None = None) -> str:
    """The daily run's cron expression (``COINMARKET_SCHEDULE_CRON``, UTC), checked as Dagster
    checks it, so that a bad value fails naming the variable."""
    env = dict(os.environ if env is None else env)
    cron = env.get(SCHEDULE_CRON_ENV, "").strip() or DEFAULT_CRON
    try:
        ScheduleDefinition(name="cron_check", cron_schedule=cron, job_name="cron_check")
    except DagsterInvalidDefinitionError:
        raise SettingsError(
            f"{SCHEDULE_CRON_ENV} must be a cron expression like {DEFAULT_CRON!r}, not {cron!r}"
        ) from None
    return cron


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """The tags that make a run materialize the days first..last (ISO dates) in one run."""
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


# The default only applies until someone switches the schedule in the UI: Dagster then keeps
# the chosen state in its storage. Read when the code location loads.
SCHEDULE_DEFAULT_STATUS = (
    DefaultScheduleStatus.RUNNING
    if env_flag(SCHEDULE_ENABLED_ENV, default=True)
    else DefaultScheduleStatus.STOPPED
)


@schedule(
    job=daily_market_job,
    cron_schedule=schedule_cron(),
    execution_timezone="UTC",
    default_status=SCHEDULE_DEFAULT_STATUS,
    description="One run for the day that just ended and the COINMARKET_RESYNC_DAYS before it "
    "(re-fetched, so that candles CoinMarketCap revised are replaced with their statistics), at "
    "COINMARKET_SCHEDULE_CRON (UTC). Running by default while the daemon runs; "
    "COINMARKET_SCHEDULE_ENABLED=false: stopped until switched on here.",
)
def daily_market_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """Materializes the day that just ended and re-fetches the COINMARKET_RESYNC_DAYS before it,
    so that candles CoinMarketCap revised since are replaced, with their statistics."""
    settings = load_settings()
    newest = (context.scheduled_execution_time - timedelta(days=1)).date()
    if newest < settings.start_date:
        return SkipReason(f"{newest} is before COINMARKET_START_DATE {settings.start_date}")
    first = max(newest - timedelta(days=settings.resync_days), settings.start_date)
    return RunRequest(
        run_key=newest.isoformat(),
        tags=partition_range_tags(first.isoformat(), newest.isoformat()),
    )


freshness_check_schedule = ScheduleDefinition(
    name="hourly_freshness_check",
    job=freshness_check_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_DEFAULT_STATUS,
    description="Every hour: whether the newest stored candle is at most 36 hours old.",
)
