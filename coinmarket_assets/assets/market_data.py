"""Raw daily market data."""

from dagster import AssetExecutionContext, MetadataValue

from coinmarket_assets.assets.metadata import currency_status
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.storage.io_manager import CoinRows


@daily_table_asset(
    deps=[currency_status],
    group_name="market_data",
)
def historical_trade_data(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> CoinRows:
    """Daily OHLCV candles and market cap per coin; partition D is the candle of UTC day D."""
    settings = pipeline_settings.settings
    coins = source.universe(settings.tickers)
    first_day, last_day = run_days(context)
    candles = source.open().daily_candles(coins, first_day, last_day)
    context.add_output_metadata({"settings": MetadataValue.json(settings.as_metadata())})
    return CoinRows(candles, [coin.coin_id for coin in coins])
