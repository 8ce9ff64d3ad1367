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
    """Each tracked coin's CoinMarketCap id, ticker, name, slug, rank and market cap, whether it
    is still active and its first and last day of data.

    Upserted by coin id; coins that leave the universe keep their last row. With
    COINMARKET_TICKERS=top:N it holds the source's whole coin map, dead coins included, so it
    needs no stored listing.
    """
    settings = pipeline_settings.settings
    with source.exclusive(context):
        if settings.point_in_time_top is not None:
            status = source.source.coin_map()
        else:
            status = source.source.coin_status(source.universe(settings))
    context.add_output_metadata({"settings": MetadataValue.json(settings.as_metadata())})
    return status
