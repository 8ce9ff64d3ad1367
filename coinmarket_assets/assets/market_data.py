"""Raw daily market data."""

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    RetryRequested,
    asset_check,
)

from coinmarket_assets import checks
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
        ),
        checks.check_spec(
            checks.OHLC_SANE,
            "historical_trade_data",
            "Every candle the run wrote has positive, finite prices with low <= open, "
            "close <= high (error).",
        ),
        checks.check_spec(
            checks.NO_MISSING_DAYS,
            "historical_trade_data",
            "No coin of the run lacks a candle on a day of the run inside its stored history, "
            "between its first and last stored candle (warning: sources have real gaps).",
        ),
        checks.check_spec(
            checks.ONE_ROW_PER_COIN_AND_DAY,
            "historical_trade_data",
            "The run's days hold one candle per coin and day: rows equal distinct coin-days "
            "(error).",
        ),
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
    candles = checked.candles.assign(source=source.source.name, fetched_at=datetime.now(UTC))
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
    # The IO manager committed the run's days when the output was yielded: check what is stored.
    yield from _stored_candle_checks(first_day, last_day, [coin.coin_id for coin in coins])


def _stored_candle_checks(
    first_day: date, last_day: date, coin_ids: Sequence[int]
) -> Iterator[AssetCheckResult]:
    """The checks of the stored candles of the run's days and coins."""
    window = (first_day, last_day, coin_ids)
    error, warn = AssetCheckSeverity.ERROR, AssetCheckSeverity.WARN
    yield from checks.evaluate_all(
        [
            (checks.OHLC_SANE, error, lambda c: checks.ohlc_problems(c, *window)),
            (checks.NO_MISSING_DAYS, warn, lambda c: checks.missing_days(c, *window)),
            (
                checks.ONE_ROW_PER_COIN_AND_DAY,
                error,
                lambda c: checks.duplicate_coin_days(c, "historical_trade_data", *window),
            ),
        ]
    )


# Not partitioned and without an input: it queries the newest stored day (an index lookup)
# instead of loading the table through the IO manager, so a schedule can run it on its own.
@asset_check(
    asset=historical_trade_data,
    name=checks.FRESH_CANDLES,
    blocking=False,
    description="The newest stored candle closed (at the UTC midnight ending its day) at most "
    "36 hours ago (warning).",
)
def fresh_candles() -> AssetCheckResult:
    now = datetime.now(UTC)
    return checks.evaluate(
        checks.FRESH_CANDLES,
        AssetCheckSeverity.WARN,
        lambda conn: checks.candle_freshness(conn, now),
    )


def _listing(problems: list[str]) -> str:
    if not problems:
        return "_none_"
    shown = [f"- {problem}" for problem in problems[:BAD_ROWS_LISTED]]
    if len(problems) > BAD_ROWS_LISTED:
        shown.append(f"- ... and {len(problems) - BAD_ROWS_LISTED} more")
    return "\n".join(shown)
