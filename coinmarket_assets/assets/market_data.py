"""Raw daily market data."""

from collections.abc import Iterator
from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    MetadataValue,
    Output,
    RetryRequested,
)

from coinmarket_assets import checks
from coinmarket_assets.assets.metadata import currency_status
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.sources.base import CandleNotPublishedError
from coinmarket_assets.storage.io_manager import CoinRows

# The newest candle appears minutes after UTC midnight: retry the step for up to an hour.
NOT_PUBLISHED_RETRIES = 6
NOT_PUBLISHED_WAIT_SECONDS = 600


@daily_table_asset(
    deps=[currency_status],
    group_name="market_data",
    check_specs=checks.specs("historical_trade_data"),
)
def historical_trade_data(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> Iterator[Output[CoinRows] | AssetCheckResult]:
    """Daily OHLCV candles and market cap per coin; partition D is the candle of UTC day D."""
    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    try:
        with source.exclusive(context):
            coins = source.universe(settings)
            checked = source.source.checked_candles(
                coins, first_day, last_day, skip_bad_rows=settings.on_bad_rows == "skip"
            )
    except CandleNotPublishedError as error:
        context.log.warning(str(error))
        raise RetryRequested(
            max_retries=NOT_PUBLISHED_RETRIES, seconds_to_wait=NOT_PUBLISHED_WAIT_SECONDS
        ) from error
    candles = checked.candles.assign(source=source.source.name, fetched_at=datetime.now(UTC))
    coin_ids = [coin.coin_id for coin in coins]
    bad_rows = checks.CheckOutcome(
        f"{len(checked.skipped)} invalid candles of the run's days left out",
        len(checked.skipped),
        checked.skipped[: checks.LISTED],
    )
    yield Output(
        CoinRows(candles, coin_ids),
        metadata={
            "settings": MetadataValue.json(settings.as_metadata()),
            "run_bad_rows_skipped": len(checked.skipped),
            "bad_rows": MetadataValue.md(bad_rows.markdown()),
        },
    )
    yield checks.result(checks.NO_BAD_ROWS, bad_rows)
    # The IO manager committed the run's days when the output was yielded: check what is stored.
    yield from checks.evaluate_stored(
        checks.RunScope("historical_trade_data", first_day, last_day, coin_ids)
    )


fresh_candles = checks.scheduled_check(checks.FRESH_CANDLES)
