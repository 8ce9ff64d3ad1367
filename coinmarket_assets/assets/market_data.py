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
    CandleNotPublishedError,
    Coin,
    MissingCandlesError,
)
from coinmarket_assets.storage import universe
from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.io_manager import FrameStream

if TYPE_CHECKING:
    from coinmarket_assets.sources.validation import CheckedCandles

# The newest candle appears minutes after UTC midnight: retry the step for up to an hour.
NOT_PUBLISHED_RETRIES = 6
NOT_PUBLISHED_WAIT_SECONDS = 600


@dataclass(frozen=True)
class _Plan:
    """Which coins a run fetches over which days: groups of coins sharing a window."""

    coin_ids: list[int]
    groups: list[tuple[tuple[date, date], list[Coin]]]
    lookback_coins: int | None = None  # top:N only: members whose window starts early


@daily_table_asset(
    deps=[currency_status, historical_listings],
    group_name="market_data",
    check_specs=checks.specs("historical_trade_data"),
)
def historical_trade_data(
    context: AssetExecutionContext,
    source: MarketDataSourceResource,
    pipeline_settings: PipelineSettingsResource,
) -> Iterator[Output[FrameStream] | AssetCheckResult]:
    """Daily OHLCV candles and market cap per coin; partition D is the candle of UTC day D.

    With COINMARKET_TICKERS=top:N: every coin that is a member on a day of the run, on the
    run's days it is listed, and the 300 days before its first member day when its candle of
    the day before the run is not stored (inserted where no candle is stored). A coin has no
    candle after its last listed day: a dead coin is not an error. Coins are fetched and
    written COINMARKET_BATCH_COINS at a time, in one transaction.
    """
    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    if settings.point_in_time_top is None:
        with source.exclusive(context):
            coins = source.universe(settings)
        plan = _Plan([coin.coin_id for coin in coins], [((first_day, last_day), coins)])
    else:
        plan = _member_plan(first_day, last_day, settings.point_in_time_top)
    fetch = _CandleFetch(context, source, settings, plan, first_day)
    yield Output(
        FrameStream(fetch.batches, plan.coin_ids, lookback=True, summary=fetch.summary),
        metadata={"settings": MetadataValue.json(settings.as_metadata())},
    )
    yield checks.result(checks.NO_BAD_ROWS, fetch.bad_rows())
    # The IO manager committed the run's days when the output was yielded: check what is stored.
    yield from checks.evaluate_stored(
        checks.RunScope("historical_trade_data", first_day, last_day, plan.coin_ids)
    )


@dataclass
class _CandleFetch:
    """The plan's candles, fetched and written batch by batch (the IO manager consumes
    ``batches``); what was skipped is known once they are consumed."""

    context: AssetExecutionContext
    source: MarketDataSourceResource
    settings: Settings
    plan: _Plan
    first_day: date
    skipped: list[str] = field(default_factory=list)
    fetched: set[int] = field(default_factory=set)
    lookback_candles: int = 0
    batches_fetched: int = 0

    def batches(self) -> Iterator[Frame]:
        self.skipped, self.fetched, self.lookback_candles = [], set(), 0
        self.batches_fetched = 0
        provenance = {"source": self.source.source.name, "fetched_at": datetime.now(UTC)}
        size = self.settings.batch_coins
        try:
            with self.source.exclusive(self.context):
                for (lo, hi), group in self.plan.groups:
                    for start in range(0, len(group), size):
                        candles = self._fetch(group[start : start + size], lo, hi)
                        self.batches_fetched += 1
                        if candles is not None:
                            yield candles.assign(**provenance)
        except CandleNotPublishedError as error:
            self.context.log.warning(str(error))
            raise RetryRequested(
                max_retries=NOT_PUBLISHED_RETRIES, seconds_to_wait=NOT_PUBLISHED_WAIT_SECONDS
            ) from error

    def _fetch(self, coins: list[Coin], first_day: date, last_day: date) -> Frame | None:
        import pandas as pd

        context, source, settings = self.context, self.source, self.settings
        checked = _group_candles(context, source, coins, first_day, last_day, settings)
        if checked is None:
            return None
        self.skipped += checked.skipped
        self.fetched.update(checked.candles["coin_id"])
        early = checked.candles["trade_date"] < pd.Timestamp(self.first_day)
        self.lookback_candles += int(early.sum())
        return checked.candles

    def bad_rows(self) -> checks.CheckOutcome:
        return checks.CheckOutcome(
            f"{len(self.skipped)} invalid candles of the run's days left out",
            len(self.skipped),
            self.skipped[: checks.LISTED],
        )

    def summary(self) -> dict[str, object]:
        metadata: dict[str, object] = {
            "run_fetch_batches": self.batches_fetched,
            "run_bad_rows_skipped": len(self.skipped),
            "bad_rows": MetadataValue.md(self.bad_rows().markdown()),
        }
        if self.plan.lookback_coins is not None:
            metadata |= {
                "run_members": len(self.plan.coin_ids),
                "run_lookback_coins": self.plan.lookback_coins,
                "run_lookback_candles": self.lookback_candles,
                "run_members_without_candles": len(set(self.plan.coin_ids) - self.fetched),
            }
        return metadata


def _member_plan(first_day: date, last_day: date, top_n: int) -> _Plan:
    """The run's members (top:N of the stored listings), each over its window
    (``universe.fetch_window``); coins with the same window are fetched together."""
    coins, windows = _member_windows(first_day, last_day, top_n)
    groups = sorted(_by_window(coins, windows).items(), key=lambda item: item[0])
    lookback = sum(1 for window in windows.values() if window[0] < first_day)
    return _Plan(sorted(windows), groups, lookback_coins=lookback)


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


fresh_candles = checks.scheduled_check(checks.FRESH_CANDLES)
