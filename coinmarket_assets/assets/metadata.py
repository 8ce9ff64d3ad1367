"""Coin metadata."""

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, asset

from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource

# Steps that call the market data source share this Dagster concurrency pool (see dagster.yaml),
# so concurrent runs never multiply the request rate.
API_POOL = "market_data_source"


@asset(
    io_manager_key="postgres_io_manager", group_name="metadata", kinds={"postgres"}, pool=API_POOL
)
def currency_status(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> pd.DataFrame:
    """Each tracked coin's CoinMarketCap id, ticker, name, slug, rank and market cap.

    Upserted by coin id; coins that leave the universe keep their last row.
    """
    settings = pipeline_settings.settings
    coins = source.universe(settings)
    status = source.source.coin_status(coins)
    context.add_output_metadata({"settings": MetadataValue.json(settings.as_metadata())})
    return status
