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
from coinmarket_assets.sources.coinmarketcap import data_api, global_metrics, pro_api
from coinmarket_assets.sources.coinmarketcap.client import ApiClient, ApiError
from coinmarket_assets.sources.coinmarketcap.listings import checked_listing, map_frame, no_listings
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
        self._pro_listings = settings.api_key is not None
        # Coins per historical listing call (the APIs' most); tests make it small to see paging.
        self.listing_page_size = data_api.LISTING_PAGE

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

    @cached_property
    def _coin_map(self) -> pd.DataFrame:
        """The map, with the current listing's rank, market cap, time and tags where it lists a
        coin (the map has no tags)."""
        if self.client.settings.api_key:
            entries = pro_api.fetch_coin_map(self.client)
        else:
            entries = data_api.fetch_coin_map(self.client)
        coins = map_frame(entries).set_index("coin_id")
        listed = self._listing.set_index("coin_id")
        listed = listed[~listed.index.duplicated()].reindex(coins.index)
        coins["rank"] = listed["rank"].fillna(coins["rank"]).astype("Int64")
        coins["market_cap"] = pd.to_numeric(listed["market_cap"], errors="coerce")
        coins["last_update"] = listed["last_update"]
        coins["tags"] = listed["tags"].astype("object").where(listed["tags"].notna(), None)
        return coins.reset_index()[STATUS_COLUMNS]

    def coin_map(self) -> pd.DataFrame:
        return self._coin_map.copy()

    def coin_status(self, coins: Sequence[Coin]) -> pd.DataFrame:
        """The coins' rows of the map; a coin the map lacks keeps its names, nothing else."""
        known = self._coin_map.set_index("coin_id")
        status = known.reindex([coin.coin_id for coin in coins])
        names = pd.DataFrame(
            [(c.ticker, c.name, c.slug) for c in coins],
            index=status.index,
            columns=["ticker", "coin_name", "slug"],
        )
        status[names.columns] = status[names.columns].fillna(names)
        return status.reset_index()[STATUS_COLUMNS]

    def global_metrics(self, first_day: date, last_day: date) -> pd.DataFrame:
        """From the data-api, with or without a key (the Pro API's is not in its free plan)."""
        return global_metrics.fetch_global_metrics(self.client, first_day, last_day)

    def historical_listings(self, first_day: date, last_day: date, depth: int) -> pd.DataFrame:
        days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
        frames = self.client.fetch_each(lambda day: self._day_listing(day, depth), days)
        listed = [frame for frame in frames if not frame.empty]
        return pd.concat(listed, ignore_index=True) if listed else no_listings()

    def _day_listing(self, day: date, depth: int) -> pd.DataFrame:
        started = time.perf_counter()
        pages = data_api.PageCount()
        try:
            rows = self._listing_rows(day, depth, pages)
        except SourceError as error:
            raise SourceError(f"CoinMarketCap's listing of {day}: {error}") from error
        listing = checked_listing(rows, day, depth)
        log.info(
            "event=listing_fetched source=%s day=%s depth=%d coins=%d pages=%d seconds=%.3f",
            self.name,
            day,
            depth,
            len(listing),
            pages.calls,
            time.perf_counter() - started,
        )
        return listing

    def _listing_rows(self, day: date, depth: int, pages: data_api.PageCount) -> list[dict]:
        if self._pro_listings:
            try:
                return pro_api.fetch_historical_listing(
                    self.client, day, depth, pages, self.listing_page_size
                )
            except ApiError as error:
                if not _plan_refused(error):
                    raise
                log.info("the API key's plan has no historical listings; using the data-api")
                self._pro_listings = False
        return data_api.fetch_historical_listing(
            self.client, day, depth, pages, self.listing_page_size
        )

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
                if not _plan_refused(error):
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


def _plan_refused(error: ApiError) -> bool:
    """Whether the Pro API refused the endpoint for the key's plan (not for a bad request)."""
    return error.error_code == pro_api.PLAN_REFUSED or error.http_status == 403


def _no_candles() -> pd.DataFrame:
    return pd.DataFrame(columns=CANDLE_COLUMNS).astype({"trade_date": "datetime64[ns]"})
