"""The interface every market data source implements, and universe resolution."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd

LISTING_COLUMNS = ["coin_id", "ticker", "coin_name", "slug", "rank"]
STATUS_COLUMNS = [*LISTING_COLUMNS, "market_cap", "last_update"]
PRICE_FIELDS = ["open", "high", "low", "close"]
CANDLE_FIELDS = [*PRICE_FIELDS, "volume", "market_cap"]
CANDLE_COLUMNS = ["coin_id", "ticker", "trade_date", *CANDLE_FIELDS]


class SourceError(RuntimeError):
    """The source cannot deliver what was asked, or delivered something invalid."""


class UnknownTickersError(SourceError):
    """Tickers that the source does not list."""


@dataclass(frozen=True)
class Coin:
    coin_id: int
    ticker: str
    name: str
    slug: str


class MarketDataSource(ABC):
    """A provider of coin listings and daily candles (UTC days)."""

    name: str

    @abstractmethod
    def listing(self) -> pd.DataFrame:
        """Every coin the source knows: ``LISTING_COLUMNS``, ``rank`` may be missing."""

    @abstractmethod
    def coin_status(self, coins: Sequence[Coin]) -> pd.DataFrame:
        """The current ``STATUS_COLUMNS`` of ``coins``."""

    @abstractmethod
    def daily_candles(self, coins: Sequence[Coin], first_day: date, last_day: date) -> pd.DataFrame:
        """Validated ``CANDLE_COLUMNS`` rows of ``coins`` for the days first_day..last_day."""


def resolve_universe(listing: pd.DataFrame, tickers: Sequence[str]) -> list[Coin]:
    """The coins named by ``tickers``; a ticker listed twice resolves to the higher-ranked coin.

    Raises ``UnknownTickersError`` naming every ticker the listing lacks.
    """
    by_ticker = listing.assign(_ticker=listing["ticker"].str.upper()).sort_values(
        ["rank", "coin_id"], na_position="last"
    )
    unknown = [t for t in tickers if t.upper() not in set(by_ticker["_ticker"])]
    if unknown:
        raise UnknownTickersError(
            f"Unknown tickers (not listed by the source): {', '.join(unknown)}"
        )
    first_match = by_ticker.drop_duplicates("_ticker").set_index("_ticker")
    return [
        Coin(
            coin_id=int(row["coin_id"]),
            ticker=str(row["ticker"]),
            name=str(row["coin_name"]),
            slug=str(row["slug"]),
        )
        for row in (first_match.loc[t.upper()] for t in tickers)
    ]
