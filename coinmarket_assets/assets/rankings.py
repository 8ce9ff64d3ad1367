"""Daily top and bottom coins by period return."""

import pandas as pd
from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue

from coinmarket_assets.compute.rankings import rank_returns
from coinmarket_assets.partitions import daily_table_asset
from coinmarket_assets.resources import PipelineSettingsResource


def _ranking_asset(name: str, *, highest_first: bool, description: str) -> AssetsDefinition:
    @daily_table_asset(
        name=name,
        description=description,
        group_name="rankings",
    )
    def ranking(
        context: AssetExecutionContext,
        pipeline_settings: PipelineSettingsResource,
        period_returns: pd.DataFrame,
    ) -> pd.DataFrame:
        settings = pipeline_settings.settings
        context.add_output_metadata({"settings": MetadataValue.json(settings.as_metadata())})
        return rank_returns(period_returns, settings.rank_size, highest_first=highest_first)

    return ranking


top_ranking = _ranking_asset(
    "top_ranking",
    highest_first=True,
    description="Each day's coins with the highest period return (rank 1 = highest), "
    "among every coin with a stored return; ties by ticker, then coin id.",
)
bottom_ranking = _ranking_asset(
    "bottom_ranking",
    highest_first=False,
    description="Each day's coins with the lowest period return (rank 1 = lowest), "
    "among every coin with a stored return; ties by ticker, then coin id.",
)
