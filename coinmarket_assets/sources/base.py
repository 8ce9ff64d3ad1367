"""The interface every market data source implements, and universe resolution."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from coinmarket_assets.storage.tables import TABLES

if TYPE_CHECKING:
    import pandas as pd

    from coinmarket_assets.sources.validation import CheckedCandles

log = logging.getLogger(__name__)

# The columns of the tables the sources fill (see storage/tables.py).
STATUS_COLUMNS = list(TABLES["currency_status"].columns)
# A listing names and ranks the coins the source lists now.
LISTING_COLUMNS = ["coin_id", "ticker", "coin_name", "slug", "rank"]
# A day's listing as it stood that day (historical_listings).
HISTORICAL_LISTING_COLUMNS = list(TABLES["historical_listings"].columns)
# The whole market's figures of a day (global_metrics).
GLOBAL_METRIC_COLUMNS = list(TABLES["global_metrics"].columns)
# A candle's values, and its row as a source returns it: the table's columns but provenance,
# which the asset adds.
CANDLE_FIELDS = list(TABLES["historical_trade_data"].revision_columns)
PRICE_FIELDS = [c for c in CANDLE_FIELDS if c not in ("volume", "market_cap")]
CANDLE_COLUMNS = [
    c for c in TABLES["historical_trade_data"].columns if c not in ("source", "fetched_at")
]


TAG_SEPARATOR = ";"


def tag_text(tags: Iterable[str] | str | None) -> str | None:
    """How a coin's tags are stored: slugs lower-cased, unique, sorted, ';'-joined; None when
    there is none. A string is read as ';'-separated (a tags column of a csv file)."""
    if tags is None or (isinstance(tags, float) and tags != tags):  # NaN: an empty cell
        return None
    if isinstance(tags, str):
        tags = tags.split(TAG_SEPARATOR)
    slugs = sorted({tag.strip().lower() for tag in tags if tag and tag.strip()})
    return TAG_SEPARATOR.join(slugs) or None


class SourceError(RuntimeError):
    """The source cannot deliver what was asked, or delivered something invalid."""


class CandleNotPublishedError(SourceError):
    """The newest day's candle of a listed coin is not published yet; retry in a while."""


class UnknownTickersError(SourceError):
    """Tickers that the source does not list."""


class MissingCandlesError(SourceError):
    """Coins of which a file source has no candle file at all; nothing was read.

    In top:N mode a listed coin may have no candles: the asset decides, and may ask again
    without ``coins``."""

    def __init__(self, message: str, coins: Sequence[Coin]) -> None:
        super().__init__(message)
        self.coins = list(coins)


class NoHistoricalListingsError(SourceError):
    """The source has no historical listings (a format without them, or no listings file)."""


class NoGlobalMetricsError(SourceError):
    """The source has no global metrics (a format without them, or no global_metrics.csv)."""


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
        """``CANDLE_COLUMNS`` rows of ``coins`` covering first_day..last_day, values as
        published and not yet checked (other days may be included)."""

    def historical_listings(self, first_day: date, last_day: date, depth: int) -> pd.DataFrame:
        """``HISTORICAL_LISTING_COLUMNS`` rows: for each day of first_day..last_day that the
        source has, its listing as it stood that day, the ``depth`` best-ranked coins, checked
        (a bad row fails, naming coin, day and field)."""
        raise NoHistoricalListingsError(f"the {self.name} source has no historical listings")

    def historical_listing_batches(
        self, first_day: date, last_day: date, depth: int, days: int
    ) -> Iterator[pd.DataFrame]:
        """``historical_listings`` of first_day..last_day, ``days`` whole days per frame, in
        date order, so that a caller holds one batch at a time."""
        first = first_day
        while first <= last_day:
            last = min(first + timedelta(days=days - 1), last_day)
            yield self.historical_listings(first, last, depth)
            first = last + timedelta(days=1)

    def global_metrics(self, first_day: date, last_day: date) -> pd.DataFrame:
        """``GLOBAL_METRIC_COLUMNS`` rows, one per day of first_day..last_day that the source
        has: the whole market as it stood at the end of the day, checked."""
        raise NoGlobalMetricsError(f"the {self.name} source has no global metrics")

    def coin_map(self) -> pd.DataFrame:
        """Every coin the source knows, dead ones too: ``STATUS_COLUMNS`` (``is_active``,
        ``first_historical_day`` and ``last_historical_day`` where known)."""
        raise SourceError(f"the {self.name} source has no coin map of dead coins")

    def checked_candles(
        self, coins: Sequence[Coin], first_day: date, last_day: date, *, skip_bad_rows: bool = False
    ) -> CheckedCandles:
        """The candles of first_day..last_day, checked: a bad row fails, naming coin, day and
        field, or with ``skip_bad_rows`` is left out and reported."""
        from coinmarket_assets.sources.validation import check_candles

        candles = self.daily_candles(coins, first_day, last_day)
        return check_candles(candles, first_day, last_day, skip_bad_rows=skip_bad_rows)


ALL_COINS = "ALL"


def resolve_universe(
    listing: pd.DataFrame, tickers: Sequence[str], top_n: int | None = None
) -> list[Coin]:
    """The coins named by ``tickers``: symbols (``BTC``), ``SYMBOL:slug`` or numeric ids;
    ``ALL`` means the ``top_n`` highest-ranked coins.

    A symbol listed by several coins resolves to the highest-ranked one, logging the others.
    Raises ``UnknownTickersError`` naming every entry the listing lacks.
    """
    ranked = listing.sort_values(["rank", "coin_id"], na_position="last", ignore_index=True)
    if [t.upper() for t in tickers] == [ALL_COINS]:
        return [_coin(row) for _, row in ranked.head(top_n).iterrows()]
    matches = {ticker: _matches(ranked, ticker) for ticker in tickers}
    unknown = [ticker for ticker, found in matches.items() if found.empty]
    if unknown:
        raise UnknownTickersError(
            f"Unknown tickers (not listed by the source): {', '.join(unknown)}"
        )
    for ticker, found in matches.items():
        if len(found) > 1:
            others = ", ".join(f"{r.slug} (id {r.coin_id})" for r in found.iloc[1:].itertuples())
            log.warning("%s is ambiguous: using %s, not %s", ticker, found.iloc[0]["slug"], others)
    coins = {}
    for ticker, found in matches.items():
        coin = _coin(found.iloc[0])
        if coin.coin_id in coins:
            log.warning("%s names %s again; it is in the universe once", ticker, coin.slug)
        coins.setdefault(coin.coin_id, coin)
    return list(coins.values())


def names_all_coins(tickers: Sequence[str]) -> bool:
    """Whether ``tickers`` is ``ALL`` (the top coins), not a list of coins."""
    return [t.upper() for t in tickers] == [ALL_COINS]


def stored_universe(names: pd.DataFrame, tickers: Sequence[str]) -> tuple[list[int], list[str]]:
    """The ids of the coins that ``tickers`` name, and the entries that name none.

    ``names`` holds coins' current names (``coin_id``, ``ticker``, ``slug``), one row per name of
    a coin; a missing slug matches any. Numeric ids name themselves. A symbol shared by several
    coins takes them all: their statistics are recomputed from stored data, so including one
    more coin never makes a value wrong. Not for ``ALL``, which names no coin.
    """
    coin_ids: set[int] = set()
    unresolved = []
    for entry in tickers:
        symbol, _, slug = entry.partition(":")
        if symbol.isdigit() and not slug:
            coin_ids.add(int(symbol))
            continue
        found = names[names["ticker"].str.upper() == symbol.upper()]
        if slug:
            found = found[found["slug"].isna() | (found["slug"].str.lower() == slug.lower())]
        if found.empty:
            unresolved.append(entry)
        coin_ids.update(int(coin_id) for coin_id in found["coin_id"])
    return sorted(coin_ids), unresolved


def _matches(ranked: pd.DataFrame, ticker: str) -> pd.DataFrame:
    symbol, _, slug = ticker.partition(":")
    if symbol.isdigit() and not slug:
        return ranked[ranked["coin_id"] == int(symbol)]
    found = ranked[ranked["ticker"].str.upper() == symbol.upper()]
    return found[found["slug"].str.lower() == slug.lower()] if slug else found


def _coin(row: pd.Series) -> Coin:
    return Coin(
        coin_id=int(row["coin_id"]),
        ticker=str(row["ticker"]),
        name=str(row["coin_name"]),
        slug=str(row["slug"]),
    )
