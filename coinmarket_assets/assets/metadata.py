"""Coin metadata."""

from dagster import AssetExecutionContext, MetadataValue, asset

from coinmarket_assets.frames import Frame
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.storage.tables import TABLES


@asset(
    io_manager_key="postgres_io_manager",
    group_name="metadata",
    kinds={"postgres"},
    metadata=TABLES["currency_status"].asset_metadata(),
)
def currency_status(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> Frame:
    """Each tracked coin's CoinMarketCap id, ticker, name, slug, rank and market cap.

    Upserted by coin id; coins that leave the universe keep their last row.
    """
    settings = pipeline_settings.settings
    with source.exclusive(context):
        status = source.source.coin_status(source.universe(settings))
    context.add_output_metadata({"settings": MetadataValue.json(settings.as_metadata())})
    return status
