"""Statistics derived from stored closes: RSI, standard deviation and period returns."""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
)

from coinmarket_assets import checks
from coinmarket_assets.frames import Frame
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import PipelineSettingsResource
from coinmarket_assets.settings import RSI_LOOKBACK_DAYS, Settings, load_time_settings
from coinmarket_assets.sources.base import names_all_coins, stored_universe
from coinmarket_assets.storage.database import connect, retry_on_lost_connection
from coinmarket_assets.storage.io_manager import CoinRows

RETURN_DAYS = load_time_settings().return_days


# Statistics need only the closes: the other candle columns are not read at all.
CLOSES = ["coin_id", "ticker", "trade_date", "close"]


def _lookback(days: int) -> AssetIn:
    """The closes of the upstream days [D - days, D] of each partition D."""
    return AssetIn(
        partition_mapping=TimeWindowPartitionMapping(
            start_offset=-days, allow_nonexistent_upstream_partitions=True
        ),
        metadata={"columns": CLOSES},
    )


def _universe_candles(
    context: AssetExecutionContext, candles: Frame, settings: Settings
) -> tuple[Frame, list[int]]:
    """The stored candles of the universe's coins, and their ids: what the run replaces and checks.

    Coins are named by their current names (``_coin_names``), never by the tickers stored on the
    window's candles, which a renamed coin's older candles keep. Statistics never call the
    source: with ``ALL``, the universe is every coin with candles in the window.
    """
    if names_all_coins(settings.tickers):
        coin_ids = sorted(int(coin_id) for coin_id in candles["coin_id"].unique())
    else:
        coin_ids, unresolved = stored_universe(_coin_names(), settings.tickers)
        if unresolved:
            context.log.warning(
                "COINMARKET_TICKERS entries that name no stored coin, left out: "
                f"{', '.join(unresolved)}. A coin is named by its currency_status ticker, or "
                "by its newest stored candle's; materialize currency_status after a rename."
            )
    return candles[candles["coin_id"].isin(coin_ids)], coin_ids


@retry_on_lost_connection
def _coin_names() -> Frame:
    """Each coin's current names: currency_status's ticker and slug, and the ticker of its
    newest stored candle (so coins that currency_status lacks, or is not yet stored for, and a
    rename fetched before currency_status was updated are named too). A small side query,
    like the checks'."""
    from coinmarket_assets.storage.table_io import coin_names

    with connect() as conn:
        return coin_names(conn)


@daily_table_asset(
    ins={"historical_trade_data": _lookback(RSI_LOOKBACK_DAYS)},
    group_name="statistics",
    check_specs=checks.specs("historical_rolling"),
)
def historical_rolling(
    context: AssetExecutionContext,
    pipeline_settings: PipelineSettingsResource,
    historical_trade_data: Frame,
) -> Iterator[Output[CoinRows] | AssetCheckResult]:
    """Wilder's RSI over the closes of the last 300 days and the population standard deviation
    of the last closes, per coin and stored day; NULL while a window is not full."""
    import pandas as pd  # imported by the step, not with the code location (start-up)

    from coinmarket_assets.compute.indicators import rolling_statistics

    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    candles, coin_ids = _universe_candles(context, historical_trade_data, settings)
    rolling = rolling_statistics(
        candles,
        pd.Timestamp(first_day),
        pd.Timestamp(last_day),
        rsi_period=settings.rsi_period,
        std_window=settings.std_window,
        lookback_days=RSI_LOOKBACK_DAYS,
    )
    yield Output(
        CoinRows(rolling, coin_ids),
        metadata={"settings": MetadataValue.json(settings.as_metadata())},
    )
    # Checked after the IO manager committed the run's rows, on what is stored.
    yield from checks.evaluate_stored(
        checks.RunScope("historical_rolling", first_day, last_day, coin_ids)
    )


@daily_table_asset(
    ins={"historical_trade_data": _lookback(RETURN_DAYS)},
    group_name="statistics",
    check_specs=checks.specs("period_returns"),
)
def period_returns(
    context: AssetExecutionContext,
    pipeline_settings: PipelineSettingsResource,
    historical_trade_data: Frame,
) -> Iterator[Output[CoinRows] | AssetCheckResult]:
    """close(D) / close(D - n days) - 1 per coin, where both closes are stored."""
    import pandas as pd

    from coinmarket_assets.compute.indicators import period_returns as compute_period_returns

    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    candles, coin_ids = _universe_candles(context, historical_trade_data, settings)
    returns = compute_period_returns(
        candles, pd.Timestamp(first_day), pd.Timestamp(last_day), RETURN_DAYS
    )
    yield Output(
        CoinRows(returns, coin_ids),
        metadata={"settings": MetadataValue.json(settings.as_metadata())},
    )
    yield from checks.evaluate_stored(
        checks.RunScope("period_returns", first_day, last_day, coin_ids)
    )
