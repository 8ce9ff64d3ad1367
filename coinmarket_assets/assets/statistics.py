"""Statistics derived from stored closes: RSI, standard deviation and period returns."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    TimeWindowPartitionMapping,
)

from coinmarket_assets.compute.indicators import period_returns as compute_period_returns
from coinmarket_assets.compute.indicators import rolling_statistics
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import PipelineSettingsResource
from coinmarket_assets.settings import RSI_LOOKBACK_DAYS, Settings, SettingsError, load_settings
from coinmarket_assets.sources.base import stored_universe
from coinmarket_assets.storage.io_manager import CoinRows

RETURN_DAYS = load_settings().return_days


def _lookback(days: int) -> AssetIn:
    """The upstream days [D - days, D] of each partition D."""
    return AssetIn(
        partition_mapping=TimeWindowPartitionMapping(
            start_offset=-days, allow_nonexistent_upstream_partitions=True
        )
    )


def _universe_rows(rows: pd.DataFrame, candles: pd.DataFrame, settings: Settings) -> CoinRows:
    """The rows of the universe's coins, identified among the stored candles.

    Statistics are computed from stored data only, so they never need the source.
    """
    coin_ids = stored_universe(candles, settings.tickers)
    return CoinRows(rows[rows["coin_id"].isin(coin_ids)].reset_index(drop=True), coin_ids)


@daily_table_asset(
    ins={"historical_trade_data": _lookback(RSI_LOOKBACK_DAYS)},
    group_name="statistics",
)
def historical_rolling(
    context: AssetExecutionContext,
    pipeline_settings: PipelineSettingsResource,
    historical_trade_data: pd.DataFrame,
) -> CoinRows:
    """Wilder's RSI over the closes of the last 300 days and the population standard deviation
    of the last closes, per coin and stored day; NULL while a window is not full."""
    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    rolling = rolling_statistics(
        historical_trade_data,
        pd.Timestamp(first_day),
        pd.Timestamp(last_day),
        rsi_period=settings.rsi_period,
        std_window=settings.std_window,
        lookback_days=RSI_LOOKBACK_DAYS,
    )
    context.add_output_metadata({"settings": MetadataValue.json(settings.as_metadata())})
    return _universe_rows(rolling, historical_trade_data, settings)


@daily_table_asset(
    ins={"historical_trade_data": _lookback(RETURN_DAYS)},
    group_name="statistics",
)
def period_returns(
    context: AssetExecutionContext,
    pipeline_settings: PipelineSettingsResource,
    historical_trade_data: pd.DataFrame,
) -> CoinRows:
    """close(D) / close(D - n days) - 1 per coin, where both closes are stored."""
    settings = pipeline_settings.settings
    if settings.return_days != RETURN_DAYS:
        raise SettingsError(
            f"COINMARKET_RETURN_DAYS is {settings.return_days} but the code location was loaded "
            f"with {RETURN_DAYS}; reload it so that the lookback matches"
        )
    first_day, last_day = run_days(context)
    returns = compute_period_returns(
        historical_trade_data, pd.Timestamp(first_day), pd.Timestamp(last_day), RETURN_DAYS
    )
    context.add_output_metadata({"settings": MetadataValue.json(settings.as_metadata())})
    return _universe_rows(returns, historical_trade_data, settings)
