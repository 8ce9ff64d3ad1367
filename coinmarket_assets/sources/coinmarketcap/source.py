"""``coinmarketcap``: the live source, over the keyless data-api or the Pro API with a key."""

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

import pandas as pd
from dagster import get_dagster_logger

from coinmarket_assets.sources.base import (
    CANDLE_COLUMNS,
    STATUS_COLUMNS,
    CandleNotPublishedError,
    Coin,
    MarketDataSource,
    SourceError,
)
from coinmarket_assets.sources.coinmarketcap import data_api, pro_api
from coinmarket_assets.sources.coinmarketcap.client import ApiClient, ApiError
from coinmarket_assets.sources.coinmarketcap.settings import ClientSettings

# Dagster captures this logger's lines into the run's log, from the fetching threads too.
log = get_dagster_logger(__name__)

# CoinMarketCap publishes a day's candle minutes after the UTC midnight that ends it.
NEWEST_DAYS = 2


class CoinMarketCapSource(MarketDataSource):
    name = "coinmarketcap"

    def __init__(self, settings: ClientSettings) -> None:
        self.client = ApiClient(settings)
        self._pro_ohlcv = settings.api_key is not None

    @classmethod
    def from_env(cls) -> "CoinMarketCapSource":
        return cls(ClientSettings.from_env())

    @cached_property
    def _listing(self) -> pd.DataFrame:
        if self.client.settings.api_key:
            listing = pro_api.fetch_listing(self.client)
        else:
            listing = data_api.fetch_listing(self.client)
        listing["rank"] = pd.array(listing["rank"], dtype="Int64")
        for column in ("last_update", "date_added"):
            listing[column] = pd.to_datetime(listing[column], utc=True, format="ISO8601")
        return listing

    def listing(self) -> pd.DataFrame:
        return self._listing

    def coin_status(self, coins: Sequence[Coin]) -> pd.DataFrame:
        ids = [coin.coin_id for coin in coins]
        status = self._listing.set_index("coin_id").loc[ids].reset_index()
        status["market_cap"] = pd.to_numeric(status["market_cap"], errors="coerce")
        return status.reindex(columns=STATUS_COLUMNS)

    def daily_candles(self, coins: Sequence[Coin], first_day: date, last_day: date) -> pd.DataFrame:
        frames = self.client.fetch_each(lambda c: self._coin_candles(c, first_day, last_day), coins)
        candles = pd.concat(frames, ignore_index=True) if frames else _no_candles()
        self._check_newest_day(coins, candles, first_day, last_day)
        return candles

    def _coin_candles(self, coin: Coin, first_day: date, last_day: date) -> pd.DataFrame:
        started = time.perf_counter()
        pages = data_api.PageCount()
        try:
            quotes = self._quotes(coin.coin_id, first_day, last_day, pages)
        except SourceError as error:
            where = f"{coin.ticker} (id {coin.coin_id}), {first_day}..{last_day}"
            raise SourceError(f"{where}: {error}") from error
        log.info(
            "event=coin_fetched source=%s coin_id=%d ticker=%s first_day=%s last_day=%s "
            "days_requested=%d candles=%d pages=%d seconds=%.3f",
            self.name,
            coin.coin_id,
            coin.ticker,
            first_day,
            last_day,
            (last_day - first_day).days + 1,
            len(quotes),
            pages.calls,
            time.perf_counter() - started,
        )
        return data_api.quotes_to_candles(quotes, coin.coin_id, coin.ticker)

    def _quotes(
        self, coin_id: int, first_day: date, last_day: date, pages: data_api.PageCount
    ) -> list[dict]:
        if self._pro_ohlcv:
            try:
                pages.calls += 1  # the Pro API answers a range in one call
                return pro_api.fetch_daily_quotes(self.client, coin_id, first_day, last_day)
            except ApiError as error:
                if error.error_code != pro_api.PLAN_REFUSED and error.http_status != 403:
                    raise
                log.info("the API key's plan has no OHLCV history; using the data-api")
                self._pro_ohlcv = False
        return data_api.fetch_daily_quotes(self.client, coin_id, first_day, last_day, pages)

    def _check_newest_day(
        self, coins: Sequence[Coin], candles: pd.DataFrame, first_day: date, last_day: date
    ) -> None:
        """A coin listed before a recent day must have its candle: fail (to retry) if not."""
        today = datetime.now(UTC).date()
        added = self._listing.set_index("coin_id")["date_added"]
        have = set(zip(candles["coin_id"], candles["trade_date"].dt.date, strict=True))
        recent = [
            first_day + timedelta(days=n)
            for n in range((last_day - first_day).days + 1)
            if first_day + timedelta(days=n) >= today - timedelta(days=NEWEST_DAYS)
        ]
        missing = [
            f"{coin.ticker} {day}"
            for coin in coins
            for day in recent
            if (coin.coin_id, day) not in have
            and pd.notna(added.get(coin.coin_id))
            and added[coin.coin_id].date() < day
        ]
        if missing:
            raise CandleNotPublishedError(
                f"Candles not published yet (CoinMarketCap publishes them shortly after UTC "
                f"midnight; retry later): {', '.join(missing)}"
            )


def _no_candles() -> pd.DataFrame:
    return pd.DataFrame(columns=CANDLE_COLUMNS).astype({"trade_date": "datetime64[ns]"})
