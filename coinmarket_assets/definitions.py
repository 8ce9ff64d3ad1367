"""The code location: assets, resources, the IO manager, the schedule and sensors, wired."""

from dagster import Definitions

from coinmarket_assets.assets.charts import ranked_coin_chart
from coinmarket_assets.assets.global_metrics import global_metrics
from coinmarket_assets.assets.listings import historical_listings
from coinmarket_assets.assets.market_data import fresh_candles, historical_trade_data
from coinmarket_assets.assets.market_index import market_index
from coinmarket_assets.assets.metadata import currency_status
from coinmarket_assets.assets.rankings import bottom_ranking, top_ranking
from coinmarket_assets.assets.statistics import historical_rolling, period_returns
from coinmarket_assets.execution import step_executor
from coinmarket_assets.gap_fill import gap_fill_sensor
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.schedules import (
    daily_market_job,
    daily_market_schedule,
    freshness_check_job,
    freshness_check_schedule,
)
from coinmarket_assets.sensors import run_failure_alert, universe_sensor
from coinmarket_assets.storage.io_manager import PostgresIOManager

defs = Definitions(
    assets=[
        currency_status,
        historical_listings,
        global_metrics,
        historical_trade_data,
        historical_rolling,
        period_returns,
        top_ranking,
        bottom_ranking,
        market_index,
        ranked_coin_chart,
    ],
    asset_checks=[fresh_candles],
    executor=step_executor,
    jobs=[daily_market_job, freshness_check_job],
    schedules=[daily_market_schedule, freshness_check_schedule],
    sensors=[universe_sensor, gap_fill_sensor, run_failure_alert],
    resources={
        "postgres_io_manager": PostgresIOManager(),
        "source": MarketDataSourceResource(),
        "pipeline_settings": PipelineSettingsResource(),
    },
)
