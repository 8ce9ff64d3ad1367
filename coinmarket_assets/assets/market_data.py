"""Raw daily market data."""

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, RetryRequested

from coinmarket_assets.assets.metadata import API_POOL, currency_status
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.sources.base import CandleNotPublishedError
from coinmarket_assets.storage.io_manager import CoinRows

# The newest candle appears minutes after UTC midnight: retry the step for up to an hour.
NOT_PUBLISHED_RETRIES = 6
NOT_PUBLISHED_WAIT_SECONDS = 600


@daily_table_asset(deps=[currency_status], group_name="market_data", pool=API_POOL)
def historical_trade_data(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> CoinRows:
    """Daily OHLCV candles and market cap per coin; partition D is the candle of UTC day D."""
    settings = pipeline_settings.settings
    coins = source.universe(settings)
    first_day, last_day = run_days(context)
    try:
        candles = source.source.daily_candles(coins, first_day, last_day)
    except CandleNotPublishedError as error:
        context.log.warning(str(error))
        raise RetryRequested(
            max_retries=NOT_PUBLISHED_RETRIES, seconds_to_wait=NOT_PUBLISHED_WAIT_SECONDS
        ) from error
    context.add_output_metadata({"settings": MetadataValue.json(settings.as_metadata())})
    fetched = candles.assign(source=source.source.name, fetched_at=pd.Timestamp.now(tz="UTC"))
    return CoinRows(fetched, [coin.coin_id for coin in coins])
