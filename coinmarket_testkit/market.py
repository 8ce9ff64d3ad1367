"""The fake server's market: its coins and candles, and the edits that make its data go wrong.

Rank and listing figures follow the newest published candle of each coin. Where the real API
is undocumented: ``maxSupply`` is null (absent from the data-api listing) for coins with an
even id.

A day's historical listing holds the coins with a published candle that day, ranked by that
candle's market cap (ties by id), with price = close. A coin whose candles end before the
market's newest day is dead: listed until its last candle, inactive in the coin map. The
current listing still shows dead coins at their last figures, so universes named by ticker keep
resolving over markets whose coins end on different days.

A coin's tags (CoinMarketCap tag slugs) come from its ``SyntheticCoin``; ``set_tags`` changes
them from a day on, so a day's listing gives the tags the coin carried that day, and the current
listing its newest tags.
"""

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from coinmarket_testkit.synthetic import (
    FIELDS,
    GLOBAL_METRICS_HEADER,
    SyntheticMarket,
    global_figures,
)

Day = date | datetime | str
PRICE_NAMES = {"open": "open", "high": "high", "low": "low", "close": "close"}


# The fields of a historical listing row that ``corrupt_listing`` may edit.
LISTING_FIELDS = (
    "rank",
    "price",
    "market_cap",
    "volume_24h",
    "circulating_supply",
    "total_supply",
    "max_supply",
)


# The figures of a day's global metrics quote (named as global_metrics' columns).
GLOBAL_FIELDS = tuple(GLOBAL_METRICS_HEADER[1:])


class Missing(Enum):
    """Marker for ``corrupt``: leave the field out of the quote altogether."""

    MISSING = "missing"


MISSING = Missing.MISSING


@dataclass
class Coin:
    """A listed coin; ``market_cap``, when set, ranks it instead of its newest candle's."""

    coin_id: int
    ticker: str
    name: str
    slug: str
    candles: dict[date, dict[str, Any]]
    market_cap: float | None = None
    # The tags from each day on (None: from the start), in the order they were set.
    tag_changes: list[tuple[date | None, tuple[str, ...]]] = field(default_factory=list)

    @property
    def market_pairs(self) -> int:
        return 10 + self.coin_id % 90

    def tags_on(self, day: date | None = None) -> tuple[str, ...]:
        """The coin's tags on ``day`` (None: its newest tags)."""
        found: tuple[str, ...] = ()
        for since, tags in sorted(self.tag_changes, key=lambda change: change[0] or date.min):
            if since is None or day is None or since <= day:
                found = tags
        return found


@dataclass(frozen=True)
class Summary:
    """A coin's listing figures, taken from its newest published candle."""

    price: float
    volume: float
    market_cap: float
    high: float
    low: float
    ath: float
    atl: float
    change_24h: float
    change_7d: float
    supply: float
    first_day: date | None
    last_day: date | None

    def max_supply(self, coin: Coin) -> float | None:
        return None if coin.coin_id % 2 == 0 else 2 * self.supply


@dataclass(frozen=True)
class DayListing:
    """A coin's row in a day's listing: ``values`` holds ``LISTING_FIELDS`` (a field edited to
    ``MISSING`` is absent) and the percent changes ``change_24h`` and ``change_7d``."""

    coin: Coin
    values: dict[str, Any]
    first_day: date


@dataclass(frozen=True)
class MapEntry:
    """A coin of the coin map; ``rank`` is None for a dead coin."""

    coin: Coin
    rank: int | None
    first_day: date | None
    last_day: date | None
    active: bool


class FakeMarket:
    """Coins and their candles (copied from ``market``), with the data faults of the real API.

    ``ticker`` arguments name the first coin with that symbol, or are a coin id. Every method
    holds the market's lock, which the server also holds while it answers from the market.
    """

    def __init__(self, market: SyntheticMarket) -> None:
        self._lock = threading.RLock()
        self._coins: dict[int, Coin] = {}
        self._duplicates: set[tuple[int, date]] = set()
        self._out_of_range = False
        self._unpublished_from: date | None = None
        self._listing_edits: dict[tuple[int, date], dict[str, Any]] = {}
        self._global_edits: dict[date, dict[str, Any] | None] = {}  # None: no quote
        for coin in market.coins:
            self.add_coin(
                coin.coin_id, coin.ticker, coin.name, coin.slug, coin.candles, tags=coin.tags
            )

    # -- data faults --------------------------------------------------------------------------

    def add_coin(
        self,
        coin_id: int,
        ticker: str,
        name: str,
        slug: str,
        candles: pd.DataFrame | None = None,
        market_cap: float | None = None,
        tags: tuple[str, ...] = (),
    ) -> None:
        """List another coin (e.g. a second one with an existing symbol).

        ``market_cap``, when given, replaces the newest candle's in the listings and ranking.
        """
        rows = {} if candles is None else _candle_rows(candles)
        with self._lock:
            if coin_id in self._coins:
                raise ValueError(f"coin id {coin_id} is already listed")
            coin = Coin(coin_id, ticker, name, slug, rows, market_cap)
            if tags:
                coin.tag_changes.append((None, tuple(tags)))
            self._coins[coin_id] = coin

    def delist(self, ticker: str | int) -> None:
        """Stop knowing a coin: it leaves the listings and its history answers
        'Invalid value for "id"', as for a coin CoinMarketCap removed."""
        with self._lock:
            del self._coins[self.coin(ticker).coin_id]

    def set_market_cap(self, ticker: str | int, market_cap: float) -> None:
        """Rank the coin by ``market_cap`` from now on."""
        with self._lock:
            self.coin(ticker).market_cap = market_cap

    def set_tags(self, ticker: str | int, tags: tuple[str, ...], since: Day | None = None) -> None:
        """The coin carries ``tags`` from ``since`` on (None: on every day)."""
        with self._lock:
            changes = self.coin(ticker).tag_changes
            if since is None:
                changes.clear()
            changes.append((None if since is None else _day(since), tuple(tags)))

    def drop_day(self, ticker: str | int, day: Day) -> None:
        """Remove a candle: it is missing from every answer from now on."""
        with self._lock:
            self.coin(ticker).candles.pop(_day(day), None)

    def duplicate_day(self, ticker: str | int, day: Day) -> None:
        """Send that candle twice in every historical answer that contains it."""
        with self._lock:
            self._duplicates.add((self.coin(ticker).coin_id, _day(day)))

    def add_out_of_range_quotes(self, flag: bool = True) -> None:
        """Also send the (up to two) candles that follow the requested range."""
        with self._lock:
            self._out_of_range = flag

    def revise(self, ticker: str | int, day: Day, **fields: float) -> None:
        """Rewrite history: change a candle's fields (names as in ``FIELDS``) from now on."""
        with self._lock:
            candle = self._candle(ticker, day)
            for name, value in fields.items():
                candle[_field(name)] = value

    def corrupt(self, ticker: str | int, day: Day, field: str, value: Any) -> None:
        """Send ``field`` of that candle as ``value`` (None, "abc", -1, ...; ``MISSING`` omits
        it); listings treat a non-numeric value as 0."""
        with self._lock:
            self._candle(ticker, day)[_field(field)] = value

    def corrupt_listing(self, ticker: str | int, day: Day, field: str, value: Any) -> None:
        """Send ``field`` (one of ``LISTING_FIELDS``) of the coin's row in that day's
        historical listing as ``value`` (``MISSING`` omits it); the order stays by market cap."""
        if field not in LISTING_FIELDS:
            raise ValueError(f"unknown listing field {field!r}; expected one of {LISTING_FIELDS}")
        with self._lock:
            coin_id = self.coin(ticker).coin_id
            self._listing_edits.setdefault((coin_id, _day(day)), {})[field] = value

    def corrupt_global_metrics(self, day: Day, field: str, value: Any) -> None:
        """Send ``field`` (a ``GLOBAL_FIELDS`` name) of the figures of ``day`` (the quote stamped
        the next midnight) as ``value`` (``MISSING`` omits it)."""
        if field not in GLOBAL_FIELDS:
            raise ValueError(
                f"unknown global metrics field {field!r}; expected one of {GLOBAL_FIELDS}"
            )
        with self._lock:
            edits = self._global_edits.setdefault(_day(day), {})
            if edits is not None:
                edits[field] = value

    def drop_global_metrics(self, day: Day) -> None:
        """Publish no global metrics quote for ``day`` (the one stamped the next midnight)."""
        with self._lock:
            self._global_edits[_day(day)] = None

    def unpublished_from(self, day: Day | None) -> None:
        """Withhold every candle on or after ``day`` (None publishes everything again)."""
        with self._lock:
            self._unpublished_from = None if day is None else _day(day)

    # -- reading ------------------------------------------------------------------------------

    def coin(self, ticker: str | int) -> Coin:
        """The coin with that id, or the first with that symbol."""
        with self._lock:
            if isinstance(ticker, int):
                return self._coins[ticker]
            found = next((c for c in self._coins.values() if c.ticker == ticker), None)
        if found is None:
            raise KeyError(f"no coin with ticker {ticker!r}")
        return found

    def listed(self, coin_id: int) -> Coin | None:
        """The coin with that id, None when it is not (or no longer) listed."""
        with self._lock:
            return self._coins.get(coin_id)

    def published_days(self, coin: Coin) -> list[date]:
        """The days of the coin's candles, oldest first, without the withheld ones."""
        with self._lock:
            cutoff = self._unpublished_from
            return sorted(d for d in coin.candles if cutoff is None or d < cutoff)

    def served_days(
        self, coin: Coin, published: list[date], days: list[date], last: date
    ) -> list[date]:
        """``days`` with duplicated days repeated and, when enabled, days after ``last``."""
        with self._lock:
            if self._out_of_range:
                days = days + [d for d in published if d > last][:2]
            twice = {day for coin_id, day in self._duplicates if coin_id == coin.coin_id}
        return [d for day in days for d in _repeat(day, day in twice)]

    def ranked(self) -> list[tuple[Coin, int, Summary]]:
        """Every coin with its 1-based rank by market cap (ties by id) and listing figures."""
        with self._lock:
            summaries = [(coin, self._summary(coin)) for coin in self._coins.values()]
        summaries.sort(key=lambda e: (-e[1].market_cap, e[0].coin_id))
        return [(coin, rank, summary) for rank, (coin, summary) in enumerate(summaries, 1)]

    def last_market_day(self) -> date | None:
        """The newest published day of any coin: the market's today."""
        with self._lock:
            days = [self.published_days(coin)[-1:] for coin in self._coins.values()]
        return max((d for found in days for d in found), default=None)

    def listing_on(self, day: date) -> list[DayListing]:
        """The day's historical listing in rank order: every coin with a published candle that
        day, ranked by its market cap (ties by id), edits of ``corrupt_listing`` applied."""
        with self._lock:
            cutoff = self._unpublished_from
            if cutoff is not None and day >= cutoff:
                return []
            listed = [coin for coin in self._coins.values() if day in coin.candles]
            listed.sort(key=lambda c: (-number(c.candles[day].get("market_cap")), c.coin_id))
            return [self._day_listing(coin, day, rank) for rank, coin in enumerate(listed, 1)]

    def _day_listing(self, coin: Coin, day: date, rank: int) -> DayListing:
        candle = coin.candles[day]
        close, market_cap = number(candle.get("close")), number(candle.get("market_cap"))
        circulating = supply(close, market_cap)
        values: dict[str, Any] = {
            "rank": rank,
            "price": close,
            "market_cap": market_cap,
            "volume_24h": number(candle.get("volume")),
            "circulating_supply": circulating,
            "total_supply": circulating,
            "max_supply": None if coin.coin_id % 2 == 0 else 2 * circulating,
        }
        values |= self._listing_edits.get((coin.coin_id, day), {})
        values = {name: value for name, value in values.items() if value is not MISSING}
        values["change_24h"] = _day_change(coin, day, 1)
        values["change_7d"] = _day_change(coin, day, 7)
        return DayListing(coin, values, min(coin.candles))

    def global_days(self) -> list[date]:
        """The days whose figures are published (any coin has a candle; none withheld or
        dropped), oldest first: the quote of day D is stamped D + 1 00:00 UTC."""
        with self._lock:
            cutoff = self._unpublished_from
            days = {day for coin in self._coins.values() for day in coin.candles}
            return sorted(
                day
                for day in days
                if (cutoff is None or day < cutoff) and self._global_edits.get(day, {}) is not None
            )

    def global_metrics_on(self, day: date) -> dict[str, Any]:
        """The market at the end of ``day`` by ``synthetic.global_figures`` (NaN where there is
        no figure), edits of ``corrupt_global_metrics`` applied (a ``MISSING`` field absent)."""
        with self._lock:
            coins = [coin for coin in self._coins.values() if day in coin.candles]
            candles = [coin.candles[day] for coin in coins]
            caps = [[number(candle.get("market_cap")) for candle in candles]]
            volumes = [[number(candle.get("volume")) for candle in candles]]
            ids = np.array([coin.coin_id for coin in coins])
            figures = global_figures(
                pd.DatetimeIndex([day]), ids, np.array(caps), np.array(volumes)
            ).iloc[0]
            values = {name: figures[name].item() for name in GLOBAL_FIELDS}  # plain Python
            values |= self._global_edits.get(day) or {}
        return {name: value for name, value in values.items() if value is not MISSING}

    def coin_map(self) -> list[MapEntry]:
        """Every coin by id, dead ones (candles ending before the market's today) inactive."""
        today = self.last_market_day()
        with self._lock:
            ranks = {coin.coin_id: rank for coin, rank, _ in self.ranked()}
            entries = []
            for coin in sorted(self._coins.values(), key=lambda c: c.coin_id):
                days = self.published_days(coin)
                first, last = (days[0], days[-1]) if days else (None, None)
                active = last is not None and last == today
                rank = ranks[coin.coin_id] if active else None
                entries.append(MapEntry(coin, rank, first, last, active))
        return entries

    def _summary(self, coin: Coin) -> Summary:
        days = self.published_days(coin)
        candles = [coin.candles[d] for d in days]
        newest = candles[-1] if candles else {}
        close = number(newest.get("close"))
        market_cap = coin.market_cap if coin.market_cap is not None else newest.get("market_cap")
        return Summary(
            price=close,
            volume=number(newest.get("volume")),
            market_cap=number(market_cap),
            high=number(newest.get("high")),
            low=number(newest.get("low")),
            ath=max((number(c.get("high")) for c in candles), default=0.0),
            atl=min((number(c.get("low")) for c in candles), default=0.0),
            change_24h=_change(candles, 1),
            change_7d=_change(candles, 7),
            supply=supply(close, number(market_cap)),
            first_day=days[0] if days else None,
            last_day=days[-1] if days else None,
        )

    def _candle(self, ticker: str | int, day: Day) -> dict[str, Any]:
        coin = self.coin(ticker)
        wanted = _day(day)
        if wanted not in coin.candles:
            raise KeyError(f"{coin.ticker} has no candle on {wanted}")
        return coin.candles[wanted]


def present(candle: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The candle's fields under their API names, leaving out ``MISSING`` ones."""
    return {api: candle.get(f) for f, api in names.items() if candle.get(f) is not MISSING}


def supply(close: float, market_cap: float) -> float:
    """The circulating supply that market cap and price imply."""
    return float(round(market_cap / close)) if close > 0 else 0.0


def number(value: Any) -> float:
    """``value`` as a finite float, 0.0 for anything corrupt."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


def _change(candles: list[dict[str, Any]], back: int) -> float:
    """Percent change of the newest close against the close ``back`` candles earlier."""
    if len(candles) <= back:
        return 0.0
    then, now = number(candles[-1 - back].get("close")), number(candles[-1].get("close"))
    return (now / then - 1) * 100 if then else 0.0


def _day_change(coin: Coin, day: date, back: int) -> float:
    """Percent change of the day's close against the close ``back`` days before, 0 if none."""
    then = coin.candles.get(day - timedelta(days=back))
    if then is None:
        return 0.0
    before, now = number(then.get("close")), number(coin.candles[day].get("close"))
    return (now / before - 1) * 100 if before else 0.0


def _repeat(day: date, twice: bool) -> Iterator[date]:
    yield day
    if twice:
        yield day


def _candle_rows(candles: pd.DataFrame) -> dict[date, dict[str, Any]]:
    return {
        pd.Timestamp(row["date"]).date(): {f: float(row[f]) for f in FIELDS}
        for row in candles.to_dict("records")
    }


def _field(name: str) -> str:
    if name not in FIELDS:
        raise ValueError(f"unknown candle field {name!r}; expected one of {FIELDS}")
    return name


def _day(day: Day) -> date:
    if isinstance(day, datetime):
        return day.date()
    return day if isinstance(day, date) else date.fromisoformat(day)
