"""Raw daily market data."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    MetadataValue,
    Output,
    RetryRequested,
)

from coinmarket_assets import checks
from coinmarket_assets.assets.listings import historical_listings
from coinmarket_assets.assets.metadata import currency_status
from coinmarket_assets.frames import Frame
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.settings import RSI_LOOKBACK_DAYS, Settings
from coinmarket_assets.sources.base import (
    CANDLE_COLUMNS,
    CANDLE_FIELDS,
    CandleNotPublishedError,
    Coin,
    MissingCandlesError,
)
from coinmarket_assets.storage import universe
from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.io_manager import CoinRows

if TYPE_CHECKING:
    from coinmarket_assets.sources.validation import CheckedCandles

# The newest candle appears minutes after UTC midnight: retry the step for up to an hour.
NOT_PUBLISHED_RETRIES = 6
NOT_PUBLISHED_WAIT_SECONDS = 600


@dataclass
class _Fetched:
    """What a run fetched: candles of its days, lookback candles before them, their coins."""

    candles: Frame
    coin_ids: list[int]
    skipped: list[str]
    before: Frame | None = None
    metadata: dict[str, object] = field(default_factory=dict)


@daily_table_asset(
    deps=[currency_status, historical_listings],
    group_name="market_data",
    check_specs=checks.specs("historical_trade_data"),
)
def historical_trade_data(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> Iterator[Output[CoinRows] | AssetCheckResult]:
    """Daily OHLCV candles and market cap per coin; partition D is the candle of UTC day D.

    With COINMARKET_TICKERS=top:N: every coin that is a member on a day of the run, on the
    run's days it is listed, and the 300 days before its first member day when its candle of
    the day before the run is not stored (inserted where no candle is stored). A coin has no
    candle after its last listed day: a dead coin is not an error.
    """
    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    try:
        if settings.point_in_time_top is None:
            fetched = _fetch_universe(context, source, settings, first_day, last_day)
        else:
            fetched = _fetch_members(context, source, settings, first_day, last_day)
    except CandleNotPublishedError as error:
        context.log.warning(str(error))
        raise RetryRequested(
            max_retries=NOT_PUBLISHED_RETRIES, seconds_to_wait=NOT_PUBLISHED_WAIT_SECONDS
        ) from error
    provenance = {"source": source.source.name, "fetched_at": datetime.now(UTC)}
    before = None if fetched.before is None else fetched.before.assign(**provenance)
    bad_rows = checks.CheckOutcome(
        f"{len(fetched.skipped)} invalid candles of the run's days left out",
        len(fetched.skipped),
        fetched.skipped[: checks.LISTED],
    )
    yield Output(
        CoinRows(fetched.candles.assign(**provenance), fetched.coin_ids, before=before),
        metadata={
            "settings": MetadataValue.json(settings.as_metadata()),
            "run_bad_rows_skipped": len(fetched.skipped),
            "bad_rows": MetadataValue.md(bad_rows.markdown()),
            **fetched.metadata,
        },
    )
    yield checks.result(checks.NO_BAD_ROWS, bad_rows)
    # The IO manager committed the run's days when the output was yielded: check what is stored.
    yield from checks.evaluate_stored(
        checks.RunScope("historical_trade_data", first_day, last_day, fetched.coin_ids)
    )


def _fetch_universe(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    settings: Settings,
    first_day: date,
    last_day: date,
) -> _Fetched:
    """The candles of the universe the settings name (tickers, or today's top coins)."""
    with source.exclusive(context):
        coins = source.universe(settings)
        checked = source.source.checked_candles(
            coins, first_day, last_day, skip_bad_rows=settings.on_bad_rows == "skip"
        )
    return _Fetched(checked.candles, [coin.coin_id for coin in coins], checked.skipped)


def _fetch_members(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    settings: Settings,
    first_day: date,
    last_day: date,
) -> _Fetched:
    """The candles of the run's members (top:N of the stored listings), each over its window
    (``universe.fetch_window``); coins with the same window are fetched together."""
    import pandas as pd

    top_n = settings.point_in_time_top
    assert top_n is not None
    coins, windows = _member_windows(first_day, last_day, top_n)
    frames, skipped = [], []
    with source.exclusive(context):
        for (lo, hi), group in sorted(_by_window(coins, windows).items()):
            checked = _group_candles(context, source, group, lo, hi, settings)
            if checked is not None:
                frames.append(checked.candles)
                skipped += checked.skipped
    candles = pd.concat(frames, ignore_index=True) if frames else _no_candles()
    early = candles["trade_date"] < pd.Timestamp(first_day)
    fetched_ids = set(candles["coin_id"])
    lookback = [coin.coin_id for coin in coins if windows[coin.coin_id][0] < first_day]
    return _Fetched(
        candles[~early].reset_index(drop=True),
        sorted(windows),
        skipped,
        before=candles[early].reset_index(drop=True),
        metadata={
            "run_members": len(windows),
            "run_lookback_coins": len(lookback),
            "run_lookback_candles": int(early.sum()),
            "run_members_without_candles": len(set(windows) - fetched_ids),
        },
    )


def _group_candles(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    group: list[Coin],
    first_day: date,
    last_day: date,
    settings: Settings,
) -> "CheckedCandles | None":
    """The checked candles of ``group``; a file source may lack a listed coin's candles
    entirely, which in top:N mode is no error: the others are fetched (None if none is left)."""
    skip = settings.on_bad_rows == "skip"
    try:
        return source.source.checked_candles(group, first_day, last_day, skip_bad_rows=skip)
    except MissingCandlesError as error:
        context.log.warning(
            f"{len(error.coins)} members have no candles at the source: "
            + ", ".join(f"{coin.ticker} (id {coin.coin_id})" for coin in error.coins[:20])
        )
        missing = {coin.coin_id for coin in error.coins}
        rest = [coin for coin in group if coin.coin_id not in missing]
        if not rest:
            return None
        return source.source.checked_candles(rest, first_day, last_day, skip_bad_rows=skip)


def _member_windows(
    first_day: date, last_day: date, top_n: int
) -> tuple[list[Coin], dict[int, tuple[date, date]]]:
    """The run's members, named as on their last listed day of the run, and their windows."""
    with connect() as conn:
        spans = universe.member_spans(conn, first_day, last_day, top_n)
        ids = [span.coin_id for span in spans]
        names = universe.member_names(conn, first_day, last_day, ids)
        tracked = universe.with_candle_on(conn, first_day - timedelta(days=1), ids)
        born = universe.first_historical_days(conn, ids)
    windows = {
        span.coin_id: universe.fetch_window(
            span,
            first_day,
            RSI_LOOKBACK_DAYS,
            tracked=span.coin_id in tracked,
            born=born.get(span.coin_id),
        )
        for span in spans
    }
    coins = [Coin(coin_id, *names[coin_id]) for coin_id in ids]
    return coins, windows


def _by_window(
    coins: list[Coin], windows: dict[int, tuple[date, date]]
) -> dict[tuple[date, date], list[Coin]]:
    groups: dict[tuple[date, date], list[Coin]] = {}
    for coin in coins:
        groups.setdefault(windows[coin.coin_id], []).append(coin)
    return groups


def _no_candles() -> Frame:
    import pandas as pd

    return pd.DataFrame(columns=CANDLE_COLUMNS).astype(
        {"coin_id": "int64", "trade_date": "datetime64[ns]"}
        | dict.fromkeys(CANDLE_FIELDS, "float64")
    )


fresh_candles = checks.scheduled_check(checks.FRESH_CANDLES)
