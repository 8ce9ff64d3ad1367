"""The daily run: shortly after each UTC midnight, the day that just ended and a few before it."""

import os
from datetime import timedelta

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from coinmarket_assets.settings import load_settings

PARTITIONED_ASSETS = AssetSelection.assets(
    "historical_trade_data", "historical_rolling", "period_returns", "top_ranking", "bottom_ranking"
)

daily_market_job = define_asset_job(
    "daily_market_data",
    selection=PARTITIONED_ASSETS,
    description="Candles, statistics and rankings of a range of days, in one run.",
)


@schedule(
    job=daily_market_job,
    cron_schedule=os.environ.get("COINMARKET_SCHEDULE_CRON", "30 0 * * *"),
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
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
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": newest.isoformat(),
        },
    )
