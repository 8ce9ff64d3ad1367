"""Raw daily market data."""

from collections.abc import Iterator

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    RetryRequested,
)

from coinmarket_assets.assets.metadata import currency_status
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.sources.base import CandleNotPublishedError
from coinmarket_assets.storage.io_manager import CoinRows

# The newest candle appears minutes after UTC midnight: retry the step for up to an hour.
NOT_PUBLISHED_RETRIES = 6
NOT_PUBLISHED_WAIT_SECONDS = 600
BAD_ROWS_CHECK = "no_bad_rows"
BAD_ROWS_LISTED = 50


@daily_table_asset(
    deps=[currency_status],
    group_name="market_data",
    check_specs=[
        AssetCheckSpec(
            BAD_ROWS_CHECK,
            asset="historical_trade_data",
            description="The source published no invalid candle for the run's days "
            "(with COINMARKET_ON_BAD_ROWS=skip they are left out and listed here).",
        )
    ],
)
def historical_trade_data(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> Iterator[Output[CoinRows] | AssetCheckResult]:
    """Daily OHLCV candles and market cap per coin; partition D is the candle of UTC day D."""
    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    try:
        with source.exclusive(context):
            coins = source.universe(settings)
            checked = source.source.checked_candles(
                coins, first_day, last_day, skip_bad_rows=settings.on_bad_rows == "skip"
            )
    except CandleNotPublishedError as error:
        context.log.warning(str(error))
        raise RetryRequested(
            max_retries=NOT_PUBLISHED_RETRIES, seconds_to_wait=NOT_PUBLISHED_WAIT_SECONDS
        ) from error
    candles = checked.candles.assign(
        source=source.source.name, fetched_at=pd.Timestamp.now(tz="UTC")
    )
    skipped = {
        "run_bad_rows_skipped": len(checked.skipped),
        "bad_rows": MetadataValue.md(_listing(checked.skipped)),
    }
    yield Output(
        CoinRows(candles, [coin.coin_id for coin in coins]),
        metadata={"settings": MetadataValue.json(settings.as_metadata()), **skipped},
    )
    yield AssetCheckResult(
        check_name=BAD_ROWS_CHECK,
        passed=not checked.skipped,
        severity=AssetCheckSeverity.WARN,
        metadata=skipped,
    )


def _listing(problems: list[str]) -> str:
    if not problems:
        return "_none_"
    shown = [f"- {problem}" for problem in problems[:BAD_ROWS_LISTED]]
    if len(problems) > BAD_ROWS_LISTED:
        shown.append(f"- ... and {len(problems) - BAD_ROWS_LISTED} more")
    return "\n".join(shown)
