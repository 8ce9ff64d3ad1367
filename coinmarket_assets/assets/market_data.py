"""Raw daily market data."""

from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, asset

from coinmarket_assets.assets.metadata import currency_status
from coinmarket_assets.partitions import daily_partitions, run_days
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.storage.io_manager import CoinRows


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[currency_status],
    io_manager_key="postgres_io_manager",
    group_name="market_data",
    kinds={"postgres", "pandas"},
    metadata={"partition_expr": "trade_date"},
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
