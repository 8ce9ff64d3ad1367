"""The code location: assets, resources and the IO manager, wired together."""

from dagster import Definitions

from coinmarket_assets.assets.market_data import historical_trade_data
from coinmarket_assets.assets.metadata import currency_status
from coinmarket_assets.assets.rankings import bottom_ranking, top_ranking
from coinmarket_assets.assets.statistics import historical_rolling, period_returns
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.schedules import daily_market_job, daily_market_schedule
from coinmarket_assets.storage.io_manager import PostgresIOManager

defs = Definitions(
    assets=[
        currency_status,
        historical_trade_data,
        historical_rolling,
        period_returns,
        top_ranking,
        bottom_ranking,
    ],
    jobs=[daily_market_job],
    schedules=[daily_market_schedule],
    resources={
        "postgres_io_manager": PostgresIOManager(),
        "source": MarketDataSourceResource(),
        "pipeline_settings": PipelineSettingsResource(),
    },
)
