"""The daily run: shortly after each UTC midnight, the day that just ended and a few before it."""

from datetime import timedelta

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from coinmarket_assets.checks import FRESH_CANDLES
from coinmarket_assets.partitions import DAILY_TABLE_ASSETS
from coinmarket_assets.settings import load_settings, load_time_settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

DAILY_CHART = AssetSelection.assets("ranked_coin_chart")
FRESHNESS_CHECK = AssetSelection.checks(
    AssetCheckKey(AssetKey(*FRESH_CANDLES.assets), FRESH_CANDLES.name)
)

daily_market_job = define_asset_job(
    "daily_market_data",
    selection=DAILY_TABLE_ASSETS | DAILY_CHART,
    description="Listings, candles, statistics, rankings and the chart of a range of days, in "
    "one run.",
)

freshness_check_job = define_asset_job(
    "freshness_check",
    selection=FRESHNESS_CHECK,
    description="Whether the newest stored candle closed at most 36 hours ago; loads no table.",
)


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """The tags that make a run materialize the days first..last (ISO dates) in one run."""
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


# The default only applies until someone switches the schedule in the UI: Dagster then keeps
# the chosen state in its storage. Read when the code location loads.
SCHEDULE_DEFAULT_STATUS = (
    DefaultScheduleStatus.RUNNING
    if load_time_settings().schedule_enabled
    else DefaultScheduleStatus.STOPPED
)


@schedule(
    job=daily_market_job,
    cron_schedule=load_time_settings().schedule_cron,
    execution_timezone="UTC",
    default_status=SCHEDULE_DEFAULT_STATUS,
    description="One run for the day that just ended and the COINMARKET_RESYNC_DAYS before it "
    "(re-fetched, so that candles CoinMarketCap revised are replaced with their statistics), at "
    "COINMARKET_SCHEDULE_CRON (UTC). With COINMARKET_TICKERS=top:N the run stores those days' "
    "listings first: a coin entering the top N gets its lookback in the same run, one leaving "
    "keeps its history. Running by default while the daemon runs; "
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
