"""Statistics derived from stored closes: RSI, standard deviation and period returns.

Each step reads its closes a batch of whole coins at a time (COINMARKET_BATCH_COINS) and streams
its rows into one write, so its memory follows the batch size, not the market; every coin's
rows depend on that coin's closes alone, so the stored rows are the same for any batch size.
"""

from collections.abc import Callable, Iterator
from datetime import date

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
from coinmarket_assets.storage.io_manager import FrameStream, TableBatches

RETURN_DAYS = load_time_settings().return_days


# Statistics need only the closes: the other candle columns are not read at all.
CLOSES = ["coin_id", "ticker", "trade_date", "close"]


def _lookback(days: int) -> AssetIn:
    """The closes of the upstream days [D - days, D] of each partition D, read in batches."""
    return AssetIn(
        partition_mapping=TimeWindowPartitionMapping(
            start_offset=-days, allow_nonexistent_upstream_partitions=True
        ),
        metadata={"columns": CLOSES, "batched": True},
    )


def _universe_candles(
    context: AssetExecutionContext, candles: TableBatches, settings: Settings
) -> list[int]:
    """The ids of the universe's coins: what the run computes, replaces and checks.

    Coins are named by their current names (``_coin_names``), never by the tickers stored on the
    window's candles, which a renamed coin's older candles keep. Statistics never call the
    source: with ``ALL``, the universe is every coin with candles in the window; with ``top:N``,
    every coin that is a member on one of the run's days (from the stored listings).
    """
    top_n = settings.point_in_time_top
    if top_n is not None:
        return _members_of_run(*run_days(context), top_n)
    if names_all_coins(settings.tickers):
        return candles.coin_ids()
    coin_ids, unresolved = stored_universe(_coin_names(), settings.tickers)
    if unresolved:
        context.log.warning(
            "COINMARKET_TICKERS entries that name no stored coin, left out: "
            f"{', '.join(unresolved)}. A coin is named by its currency_status ticker, or "
            "by its newest stored candle's; materialize currency_status after a rename."
        )
    return sorted(coin_ids)


@retry_on_lost_connection
def _members_of_run(first_day: date, last_day: date, top_n: int) -> list[int]:
    """The coins ranked top_n or better in the stored listing of at least one of the days."""
    from coinmarket_assets.storage.universe import member_spans

    with connect() as conn:
        return [span.coin_id for span in member_spans(conn, first_day, last_day, top_n)]


def _per_batch(
    candles: TableBatches,
    coin_ids: list[int],
    batch_coins: int,
    compute: Callable[[Frame], Frame],
) -> Callable[[], Iterator[Frame]]:
    """The stream of ``compute``'s rows, one batch of whole coins at a time."""

    def batches() -> Iterator[Frame]:
        for batch in candles.by_coins(coin_ids, batch_coins):
            yield compute(batch)

    return batches


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
    historical_trade_data: TableBatches,
) -> Iterator[Output[FrameStream] | AssetCheckResult]:
    """Wilder's RSI over the closes of the last 300 days and the population standard deviation
    of the last closes, per coin and stored day; NULL while a window is not full."""
    import pandas as pd  # imported by the step, not with the code location (start-up)

    from coinmarket_assets.compute.indicators import rolling_statistics

    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    coin_ids = _universe_candles(context, historical_trade_data, settings)

    def rolling(candles: Frame) -> Frame:
        return rolling_statistics(
            candles,
            pd.Timestamp(first_day),
            pd.Timestamp(last_day),
            rsi_period=settings.rsi_period,
            std_window=settings.std_window,
            lookback_days=RSI_LOOKBACK_DAYS,
        )

    # The IO manager reads, computes and writes the batches as it stores the output.
    batches = _per_batch(historical_trade_data, coin_ids, settings.batch_coins, rolling)
    yield Output(
        FrameStream(batches, coin_ids),
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
    historical_trade_data: TableBatches,
) -> Iterator[Output[FrameStream] | AssetCheckResult]:
    """close(D) / close(D - n days) - 1 per coin, where both closes are stored."""
    import pandas as pd

    from coinmarket_assets.compute.indicators import period_returns as compute_period_returns

    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    coin_ids = _universe_candles(context, historical_trade_data, settings)

    def returns(candles: Frame) -> Frame:
        return compute_period_returns(
            candles, pd.Timestamp(first_day), pd.Timestamp(last_day), RETURN_DAYS
        )

    batches = _per_batch(historical_trade_data, coin_ids, settings.batch_coins, returns)
    yield Output(
        FrameStream(batches, coin_ids),
        metadata={"settings": MetadataValue.json(settings.as_metadata())},
    )
    yield from checks.evaluate_stored(
        checks.RunScope("period_returns", first_day, last_day, coin_ids)
    )
