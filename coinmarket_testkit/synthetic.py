"""Deterministic generated markets in the csv: source layout, with the real data's quirks:
gaps, flat candles, zero volumes, zero market caps and prices small enough for 1e-05 notation.

The whole market (thousands of coins, births over the years, dead coins, daily listings)::

    whole_market(coins: int, first_day: date, days: int, seed: int, dying_share: float = 0.25,
                 *, gap_share: float = 0.0, born_at_start: float = 0.2,
                 first_id: int = 1) -> WholeMarket
    WholeMarket.write_csv(directory: Path, listing_depth: int | None = None,
                          life_columns: bool = True) -> None

``write_csv`` writes a csv: source: ``coins.csv`` (with is_active, first_historical_day and
last_historical_day unless ``life_columns`` is false), ``daily/<coin_id>.csv`` and
``listings.csv`` (each day's listed coins ranked by market cap, descending, ties by coin id;
price = close; the best ``listing_depth`` per day, or all).

Tags (CoinMarketCap's tag slugs, for COINMARKET_EXCLUDE_TAGS): ``SyntheticCoin.tags``, or
``whole_market(..., tags={coin_id: ("stablecoin",)})``. coins.csv and listings.csv get a
``tags`` column (';'-separated, the same every day) only when some coin has tags, so the files
of untagged markets are unchanged. 5,000 coins x 13 years (13.2M
candles, 4.7M listing rows at depth 1000): 85 s and 390 MB on two busy cores.
"""

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

FIELDS = ["open", "high", "low", "close", "volume", "market_cap"]
STABLECOIN, WRAPPED_TOKENS = "stablecoin", "wrapped-tokens"  # real CoinMarketCap tag slugs


@dataclass
class SyntheticCoin:
    """One coin and its daily candles."""

    coin_id: int
    ticker: str
    name: str
    candles: pd.DataFrame  # date (datetime64), FIELDS as floats
    tags: tuple[str, ...] = ()  # CoinMarketCap tag slugs

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "-")


def tag_cell(tags: tuple[str, ...]) -> str:
    """A coin's tags as a csv cell: ';'-separated, empty when none."""
    return ";".join(tags)


@dataclass
class SyntheticMarket:
    """Coins that the csv: and html: sources and the fake CoinMarketCap can serve."""

    coins: list[SyntheticCoin] = field(default_factory=list)

    @classmethod
    def from_csv(cls, directory: Path, tickers: list[str] | None = None) -> "SyntheticMarket":
        """A market read from a csv: source directory, so the test server can serve it."""
        coins = pd.read_csv(directory / "coins.csv", keep_default_na=False)
        if tickers is not None:
            coins = coins[coins["ticker"].isin(tickers)]
        tags = coins["tags"] if "tags" in coins else pd.Series("", index=coins.index)
        return cls(
            [
                SyntheticCoin(
                    int(row.coin_id),
                    row.ticker,
                    row.name,
                    pd.read_csv(
                        _daily_path(directory, row.coin_id, row.ticker), parse_dates=["date"]
                    ),
                    tuple(tag for tag in str(cell).split(";") if tag),
                )
                for row, cell in zip(coins.itertuples(), tags, strict=True)
            ]
        )

    def with_tags(self, tags: Mapping[str, tuple[str, ...]]) -> "SyntheticMarket":
        """The same market, the coins named by ticker in ``tags`` carrying those tags."""
        unknown = set(tags) - set(self.tickers)
        if unknown:
            raise KeyError(f"no coin with ticker {sorted(unknown)}")
        return SyntheticMarket(
            [replace(coin, tags=tuple(tags.get(coin.ticker, coin.tags))) for coin in self.coins]
        )

    @property
    def tagged(self) -> bool:
        """Whether some coin has tags (then the csv files get a ``tags`` column)."""
        return any(coin.tags for coin in self.coins)

    @property
    def tickers(self) -> list[str]:
        return [coin.ticker for coin in self.coins]

    def coin(self, ticker: str) -> SyntheticCoin:
        return next(coin for coin in self.coins if coin.ticker == ticker)

    def candles(self) -> pd.DataFrame:
        """Every candle as the pipeline stores it: coin_id, ticker, trade_date, FIELDS."""
        frames = [
            coin.candles.rename(columns={"date": "trade_date"}).assign(
                coin_id=coin.coin_id, ticker=coin.ticker
            )
            for coin in self.coins
        ]
        columns = ["coin_id", "ticker", "trade_date", *FIELDS]
        return pd.concat(frames, ignore_index=True)[columns]

    def write_csv(self, directory: Path, *, by_id: bool = False) -> None:
        """``directory`` as a csv: source: coins.csv and ``daily/<TICKER>.csv`` (or
        ``daily/<coin_id>.csv``, for markets whose tickers repeat)."""
        (directory / "daily").mkdir(parents=True, exist_ok=True)
        self.write_coins_csv(directory)
        for coin in self.coins:
            name = coin.coin_id if by_id else coin.ticker
            write_daily_csv(directory / "daily" / f"{name}.csv", coin.candles)

    def write_listings_csv(self, directory: Path) -> None:
        """``directory/listings.csv``: each day's coins with a candle, ranked by that day's
        market cap (descending, ties by coin id), price the close; no supplies."""
        candles = self.candles().sort_values(
            ["trade_date", "market_cap", "coin_id"], ascending=[True, False, True]
        )
        candles["rank"] = candles.groupby("trade_date").cumcount() + 1
        names = {coin.coin_id: (coin.name, coin.slug) for coin in self.coins}
        tags = {coin.coin_id: tag_cell(coin.tags) for coin in self.coins}
        frame = pd.DataFrame(
            {
                "date": candles["trade_date"].dt.strftime("%Y-%m-%d"),
                "coin_id": candles["coin_id"],
                "ticker": candles["ticker"],
                "name": [names[coin_id][0] for coin_id in candles["coin_id"]],
                "slug": [names[coin_id][1] for coin_id in candles["coin_id"]],
                "rank": candles["rank"],
                "price": candles["close"],
                "market_cap": candles["market_cap"],
                "volume_24h": candles["volume"],
                **dict.fromkeys(["circulating_supply", "total_supply", "max_supply"], ""),
            }
        )
        if self.tagged:
            frame["tags"] = [tags[coin_id] for coin_id in candles["coin_id"]]
        frame.to_csv(directory / "listings.csv", index=False)

    def write_coins_csv(self, directory: Path) -> None:
        """``directory/coins.csv`` in the layout the csv: and html: sources read."""
        frame = pd.DataFrame(
            {
                "coin_id": [c.coin_id for c in self.coins],
                "ticker": [c.ticker for c in self.coins],
                "name": [c.name for c in self.coins],
                "slug": [c.slug for c in self.coins],
            }
        )
        if self.tagged:
            frame["tags"] = [tag_cell(c.tags) for c in self.coins]
        frame.to_csv(directory / "coins.csv", index=False)


def _daily_path(directory: Path, coin_id: int, ticker: str) -> Path:
    by_id = directory / "daily" / f"{coin_id}.csv"
    return by_id if by_id.is_file() else by_id.with_name(f"{ticker}.csv")


def write_daily_csv(path: Path, candles: pd.DataFrame) -> None:
    """Values written with ``repr``, so every float round-trips exactly."""
    lines = ["date," + ",".join(FIELDS)]
    for row in candles.itertuples(index=False):
        values = [repr(float(getattr(row, f))) for f in FIELDS]
        lines.append(f"{row.date:%Y-%m-%d}," + ",".join(values))
    path.write_text("\n".join(lines) + "\n")


def random_walk(
    seed: int, first_day: date, days: int, start_price: float, volatility: float = 0.04
) -> pd.DataFrame:
    """Daily candles of a geometric random walk with consistent OHLC."""
    rng = np.random.default_rng(seed)
    closes = start_price * np.exp(np.cumsum(rng.normal(0.0, volatility, days)))
    opens = np.concatenate([[start_price], closes[:-1]])
    spread = rng.uniform(0.0, volatility, days)
    return pd.DataFrame(
        {
            "date": pd.date_range(first_day, periods=days, freq="D"),
            "open": opens,
            "high": np.maximum(opens, closes) * (1 + spread),
            "low": np.minimum(opens, closes) * (1 - spread),
            "close": closes,
            "volume": rng.uniform(1e6, 1e9, days),
            "market_cap": closes * 1e7,
        }
    )


def flatten(candles: pd.DataFrame, rows: slice, price: float) -> None:
    """Make a run of flat candles (open = high = low = close)."""
    for column in ["open", "high", "low", "close"]:
        candles.iloc[rows, candles.columns.get_loc(column)] = price


def default_market(first_day: date = date(2020, 1, 1), days: int = 200) -> SyntheticMarket:
    """Five coins: gaps, flat runs, zero volumes and market caps, a late listing, tiny prices."""
    alpha = random_walk(1, first_day, days, 7000.0)
    alpha = alpha.drop(index=[40, 41, 42, 90]).reset_index(drop=True)  # gaps
    alpha.loc[:20, "volume"] = 0.0  # early days without reported volume

    beta = random_walk(2, first_day, days, 150.0)
    flatten(beta, slice(60, 80), 150.0)

    gamma = random_walk(3, first_day, days, 1.0, volatility=0.002)
    flatten(gamma, slice(0, 40), 1.0)  # a stablecoin-like flat start
    gamma.loc[:5, "market_cap"] = 0.0

    delta = random_walk(4, first_day, days, 9.8e-05)  # scientific notation in the csv

    late = random_walk(5, first_day + pd.Timedelta(days=100), days - 100, 3.0)

    return SyntheticMarket(
        [
            SyntheticCoin(101, "ALPHA", "Alpha Coin", alpha),
            SyntheticCoin(102, "BETA", "Beta", beta),
            SyntheticCoin(103, "GAMMA", "Gamma Dollar", gamma),
            SyntheticCoin(104, "DELTA", "Delta", delta),
            SyntheticCoin(105, "LATE", "Late Listing", late),
        ]
    )


LISTINGS_HEADER = [
    "date",
    "coin_id",
    "ticker",
    "name",
    "slug",
    "rank",
    "price",
    "market_cap",
    "volume_24h",
    "circulating_supply",
    "total_supply",
    "max_supply",
]
_LISTING_CHUNK_DAYS = 128  # days ranked at once: bounds the listing pass's memory


@dataclass
class WholeMarket:
    """A generated whole market: coin ``i`` (column ``i``, ids ascending) is listed on the days
    ``listed[:, i]``, from its birth to its death (or the last day), minus any gaps.

    ``closes`` is the days x coins random walk; a candle's open is the walk's previous close.
    Spreads and volumes come from a hash of (day, coin), so a candle and its listing row agree
    without storing them.
    """

    first_day: date
    seed: int
    coin_ids: np.ndarray  # int64, ascending
    tickers: np.ndarray  # str; every tenth coin repeats the ticker of the coin before it
    births: np.ndarray  # day index of the first candle
    deaths: np.ndarray  # day index of the last candle (the last day for coins that live on)
    closes: np.ndarray  # float64, days x coins
    listed: np.ndarray  # bool, days x coins
    supply: np.ndarray  # circulating supply, constant per coin
    max_supply: np.ndarray  # NaN where the coin has none
    tags: dict[int, tuple[str, ...]] = field(default_factory=dict)  # by coin id; others none

    @property
    def days(self) -> int:
        return self.closes.shape[0]

    @property
    def names(self) -> list[str]:
        return [f"Coin {coin_id}" for coin_id in self.coin_ids]

    @property
    def slugs(self) -> list[str]:
        return [f"coin-{coin_id}" for coin_id in self.coin_ids]

    @property
    def dead(self) -> np.ndarray:
        """Whether each coin died before the last day."""
        return self.deaths < self.days - 1

    def dates(self, day_index: np.ndarray) -> pd.DatetimeIndex:
        return pd.Timestamp(self.first_day) + pd.to_timedelta(day_index, unit="D")

    def candles(self, coin: int) -> pd.DataFrame:
        """The daily candles of coin index ``coin``: ``date`` and FIELDS, days ascending."""
        day, values = self._candle_values(coin)
        return pd.DataFrame({"date": self.dates(day)} | values)

    def _candle_values(self, coin: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        day = np.flatnonzero(self.listed[:, coin])
        close = self.closes[day, coin]
        previous = self.closes[np.maximum(day - 1, 0), coin]
        start = self.closes[0, coin] / np.exp(_walk_step(self.seed, 0, coin))
        opens = np.where(day == 0, start, previous)
        spread = 0.05 * _unit(self.seed, day, coin, 1)
        market_cap = close * self.supply[coin]
        return day, {
            "open": opens,
            "high": np.maximum(opens, close) * (1 + spread),
            "low": np.minimum(opens, close) * (1 - spread),
            "close": close,
            "volume": _volume(self.seed, market_cap, day, coin),
            "market_cap": market_cap,
        }

    def listings(self, depth: int | None = None) -> pd.DataFrame:
        """Every day's listing in the columns of listings.csv (``date`` as datetimes)."""
        frames = [chunk.to_pandas() for chunk in self._listing_chunks(depth)]
        frame = pd.concat(frames, ignore_index=True)
        return frame.assign(date=pd.to_datetime(frame["date"]))

    def coins_frame(self, life_columns: bool = True) -> pd.DataFrame:
        """coins.csv: ids, names, the rank on the last day (empty if not listed then), and with
        ``life_columns`` each coin's is_active and first/last listed day."""
        last = self.closes[-1] * self.supply
        last[~self.listed[-1]] = np.nan
        order = np.argsort(-last, kind="stable")
        rank = np.full(len(self.coin_ids), np.nan)
        rank[order] = np.arange(1, len(order) + 1)
        rank[~self.listed[-1]] = np.nan
        frame = pd.DataFrame(
            {
                "coin_id": self.coin_ids,
                "ticker": self.tickers,
                "name": self.names,
                "slug": self.slugs,
                "rank": pd.array(rank, dtype="Int64"),
            }
        )
        if self.tags:
            frame["tags"] = self._tag_cells().to_numpy(zero_copy_only=False)
        if not life_columns:
            return frame
        return frame.assign(
            is_active=np.where(self.dead, 0, 1),
            first_historical_day=self.dates(self.births).strftime("%Y-%m-%d"),
            last_historical_day=self.dates(self.deaths).strftime("%Y-%m-%d"),
        )

    def write_csv(
        self, directory: Path, listing_depth: int | None = None, life_columns: bool = True
    ) -> None:
        """``directory`` as a csv: source: coins.csv, daily/<coin_id>.csv and listings.csv."""
        (directory / "daily").mkdir(parents=True, exist_ok=True)
        self.coins_frame(life_columns).to_csv(directory / "coins.csv", index=False)
        # Arrow formats outside the GIL: the files are written by as many threads as cores.
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            for _ in pool.map(partial(self._write_daily, directory), range(len(self.coin_ids))):
                pass
        with (directory / "listings.csv").open("wb") as file:
            header = [*LISTINGS_HEADER, "tags"] if self.tags else LISTINGS_HEADER
            file.write((",".join(header) + "\n").encode())
            for chunk in self._listing_chunks(listing_depth):
                pa_csv.write_csv(chunk, file, pa_csv.WriteOptions(include_header=False))

    def to_market(self) -> SyntheticMarket:
        """The same coins as a ``SyntheticMarket`` (for the test server; small markets)."""
        return SyntheticMarket(
            [
                SyntheticCoin(
                    int(coin_id),
                    str(ticker),
                    name,
                    self.candles(i),
                    self.tags.get(int(coin_id), ()),
                )
                for i, (coin_id, ticker, name) in enumerate(
                    zip(self.coin_ids, self.tickers, self.names, strict=True)
                )
            ]
        )

    def _write_daily(self, directory: Path, coin: int) -> None:
        _write_csv(directory / "daily" / f"{self.coin_ids[coin]}.csv", self._candle_table(coin))

    def _candle_table(self, coin: int) -> pa.Table:
        day, values = self._candle_values(coin)
        return pa.table({"date": self._arrow_dates(day)} | values)

    def _arrow_dates(self, day: np.ndarray) -> pa.Array:
        epoch_day = (self.first_day - date(1970, 1, 1)).days
        return pa.array((day + epoch_day).astype(np.int32)).cast(pa.date32())

    def _tag_cells(self) -> pa.Array:
        """Each coin's tags as a csv cell, in coin order (empty: none)."""
        return pa.array([tag_cell(self.tags.get(int(c), ())) for c in self.coin_ids])

    def _listing_chunks(self, depth: int | None) -> Iterator[pa.Table]:
        names, slugs = pa.array(self.names), pa.array(self.slugs)
        tickers = pa.array(self.tickers.tolist())
        tags = self._tag_cells() if self.tags else None
        for start in range(0, self.days, _LISTING_CHUNK_DAYS):
            day, coin, rank = self._ranked(
                start, min(start + _LISTING_CHUNK_DAYS, self.days), depth
            )
            price = self.closes[day, coin]
            market_cap = price * self.supply[coin]
            take = pa.array(coin)
            tagged = {"tags": tags.take(take)} if tags is not None else {}
            yield pa.table(
                {
                    "date": self._arrow_dates(day),
                    "coin_id": self.coin_ids[coin],
                    "ticker": tickers.take(take),
                    "name": names.take(take),
                    "slug": slugs.take(take),
                    "rank": rank,
                    "price": price,
                    "market_cap": market_cap,
                    "volume_24h": _volume(self.seed, market_cap, day, coin),
                    "circulating_supply": self.supply[coin],
                    "total_supply": self.supply[coin] * 1.25,
                    "max_supply": pa.array(self.max_supply[coin], from_pandas=True),
                }
                | tagged
            )

    def _ranked(
        self, start: int, end: int, depth: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(day index, coin index, rank) of the listed coins of days start..end-1, by day and
        rank: market cap descending, ties by coin id (columns are in id order, the sort stable)."""
        caps = self.closes[start:end] * self.supply
        listed = self.listed[start:end]
        caps[~listed] = np.nan  # NaN sorts last
        order = np.argsort(-caps, axis=1, kind="stable")
        counts = listed.sum(axis=1)
        if depth is not None:
            counts = np.minimum(counts, depth)
        keep = np.arange(caps.shape[1])[None, :] < counts[:, None]
        row, place = np.nonzero(keep)
        return row + start, order[keep], place + 1


def whole_market(
    coins: int,
    first_day: date,
    days: int,
    seed: int,
    dying_share: float = 0.25,
    *,
    gap_share: float = 0.0,
    born_at_start: float = 0.2,
    first_id: int = 1,
    tags: Mapping[int, tuple[str, ...]] | None = None,
) -> WholeMarket:
    """A market of ``coins`` coins over ``days`` days: ``born_at_start`` of them listed from
    the first day, the others born uniformly over the first nine tenths of the period;
    ``dying_share`` of them die (no candle after a day before the last); ``gap_share`` of a
    coin's days between its first and last are missing (0: candles continuous while alive);
    ``tags`` gives coins (by id) CoinMarketCap tags, in coins.csv and every listing row."""
    rng = np.random.default_rng(seed)
    births = np.where(
        rng.random(coins) < born_at_start, 0, rng.integers(0, max(1, days * 9 // 10), coins)
    )
    dying = np.zeros(coins, dtype=bool)
    dying[rng.permutation(coins)[: round(coins * dying_share)]] = True
    lifetime = rng.random(coins)  # a dying coin dies that far between its birth and the end
    deaths = np.where(dying, births + (lifetime * (days - 1 - births)).astype(int), days - 1)
    deaths = np.where(dying, np.minimum(deaths, days - 2), deaths).clip(births)
    day = np.arange(days)[:, None]
    listed = (day >= births) & (day <= deaths)
    if gap_share:
        inside = (day > births) & (day < deaths)
        listed &= ~(inside & (_unit(seed, day, np.arange(coins), 3) < gap_share))
    return WholeMarket(
        first_day=first_day,
        seed=seed,
        coin_ids=np.arange(first_id, first_id + coins, dtype=np.int64),
        tickers=_tickers(coins),
        births=births,
        deaths=deaths,
        closes=_walks(seed, days, coins, rng.lognormal(0.0, 3.0, coins)),
        listed=listed,
        supply=np.round(rng.lognormal(18.0, 2.0, coins)),
        max_supply=np.where(rng.random(coins) < 0.5, np.nan, np.round(rng.lognormal(20, 2, coins))),
        tags={int(coin_id): tuple(found) for coin_id, found in (tags or {}).items()},
    )


def _walks(seed: int, days: int, coins: int, start: np.ndarray) -> np.ndarray:
    """Each coin's closes, a geometric random walk from ``start``, built by blocks of days so
    that only the days x coins result is ever whole."""
    walk = np.empty((days, coins))
    level = np.log(start)
    coin = np.arange(coins)[None, :]
    for first in range(0, days, _LISTING_CHUNK_DAYS):
        block = np.arange(first, min(first + _LISTING_CHUNK_DAYS, days))[:, None]
        steps = np.cumsum(_walk_step(seed, block, coin), axis=0)
        steps += level
        level = steps[-1]
        walk[block[:, 0]] = np.exp(steps)
    return walk


def _walk_step(seed: int, day: np.ndarray | int, coin: np.ndarray | int) -> np.ndarray:
    # A centred step of about 4% a day from the (day, coin) hash.
    return 0.07 * (_unit(seed, day, coin, 0) - 0.5)


def _volume(
    seed: int, market_cap: np.ndarray, day: np.ndarray, coin: np.ndarray | int
) -> np.ndarray:
    return market_cap * (0.002 + 0.2 * _unit(seed, day, coin, 2))


def _unit(seed: int, day: np.ndarray | int, coin: np.ndarray | int, salt: int) -> np.ndarray:
    """A uniform number in [0, 1) for each (day, coin): a splitmix64 hash, so any cell can be
    recomputed without storing the matrix."""
    with np.errstate(over="ignore"):
        x = (
            np.asarray(day, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            + np.asarray(coin, dtype=np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
            + np.uint64((seed * 4 + salt) & 0xFFFFFFFF) * np.uint64(0x94D049BB133111EB)
        )
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _tickers(coins: int) -> np.ndarray:
    """Three or more letters per coin; every tenth coin repeats the previous coin's ticker, as
    real symbols repeat (19 coins are PEPE)."""
    tickers = []
    for i in range(coins):
        n, letters = (i - 1 if i % 10 == 9 else i), ""
        for _ in range(3):
            n, digit = divmod(n, 26)
            letters = chr(65 + digit) + letters
        tickers.append(("Z" * n if n else "") + letters)
    return np.array(tickers)


def _write_csv(path: Path, table: pa.Table) -> None:
    """A csv with a plain header (Arrow quotes header names); floats in shortest round-trip
    form, as ``write_daily_csv`` writes them."""
    with path.open("wb") as file:
        file.write((",".join(table.column_names) + "\n").encode())
        pa_csv.write_csv(table, file, pa_csv.WriteOptions(include_header=False))


# -- the whole market's figures of each day (global_metrics.csv, the test server's quotes) --------

BITCOIN_ID, ETHER_ID = 1, 1027  # CoinMarketCap's ids: dominance is these coins' share
GLOBAL_METRICS_HEADER = [
    "date",
    "total_market_cap",
    "total_volume_24h",
    "altcoin_market_cap",
    "altcoin_volume_24h",
    "btc_dominance",
    "eth_dominance",
    "active_cryptocurrencies",
    "active_exchanges",
    "active_market_pairs",
]


def global_figures(
    dates: pd.DatetimeIndex, coin_ids: np.ndarray, caps: np.ndarray, volumes: np.ndarray
) -> pd.DataFrame:
    """The figures of each day (``GLOBAL_METRICS_HEADER``) from its days x coins market caps and
    volumes (NaN where a coin has no candle); days without a coin are left out.

    Totals sum the coins with a candle; dominance is coin 1's (Bitcoin) or 1027's (Ether) share
    of the total in %, rounded to 4 decimals as CoinMarketCap publishes it, NaN when that coin
    has no candle; altcoin figures are the totals less Bitcoin's; market pairs sum each coin's
    10 + id % 90 (the server's ``Coin.market_pairs``); exchanges are 400 + the day of the month.
    """
    listed = ~np.isnan(caps)
    total_cap, total_volume = np.nansum(caps, axis=1), np.nansum(volumes, axis=1)

    def of(coin_id: int, values: np.ndarray) -> np.ndarray:
        at = np.flatnonzero(coin_ids == coin_id)
        return values[:, at[0]] if len(at) else np.full(len(dates), np.nan)

    def share(coin_id: int) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.round(np.where(total_cap > 0, 100 * of(coin_id, caps) / total_cap, np.nan), 4)

    frame = pd.DataFrame(
        {
            "date": dates,
            "total_market_cap": total_cap,
            "total_volume_24h": total_volume,
            "altcoin_market_cap": total_cap - np.nan_to_num(of(BITCOIN_ID, caps)),
            "altcoin_volume_24h": total_volume - np.nan_to_num(of(BITCOIN_ID, volumes)),
            "btc_dominance": share(BITCOIN_ID),
            "eth_dominance": share(ETHER_ID),
            "active_cryptocurrencies": listed.sum(axis=1),
            "active_exchanges": 400 + pd.DatetimeIndex(dates).day.to_numpy(),
            "active_market_pairs": (listed * (10 + coin_ids % 90)).sum(axis=1),
        }
    )
    return frame[listed.any(axis=1)].reset_index(drop=True)


def market_global_metrics(market: SyntheticMarket) -> pd.DataFrame:
    """``global_figures`` of every day of ``market``."""
    candles = market.candles()
    caps = candles.pivot(index="trade_date", columns="coin_id", values="market_cap")
    volumes = candles.pivot(index="trade_date", columns="coin_id", values="volume")
    days = pd.date_range(caps.index.min(), caps.index.max(), freq="D")
    caps, volumes = caps.reindex(days), volumes.reindex(index=days, columns=caps.columns)
    return global_figures(days, caps.columns.to_numpy(), caps.to_numpy(), volumes.to_numpy())


def whole_market_global_metrics(market: WholeMarket) -> pd.DataFrame:
    """``global_figures`` of every day of a whole market, computed by blocks of days."""
    frames = []
    coin = np.arange(len(market.coin_ids))[None, :]
    for start in range(0, market.days, _LISTING_CHUNK_DAYS):
        day = np.arange(start, min(start + _LISTING_CHUNK_DAYS, market.days))[:, None]
        caps = market.closes[day[:, 0]] * market.supply
        volumes = _volume(market.seed, caps, day, coin)
        unlisted = ~market.listed[day[:, 0]]
        caps[unlisted], volumes[unlisted] = np.nan, np.nan
        frames.append(global_figures(market.dates(day[:, 0]), market.coin_ids, caps, volumes))
    return pd.concat(frames, ignore_index=True)


def write_global_metrics_csv(directory: Path, metrics: pd.DataFrame) -> None:
    """``directory/global_metrics.csv`` of ``market_global_metrics`` (or
    ``whole_market_global_metrics``): floats in shortest round-trip form, NaN as empty."""
    frame = metrics[GLOBAL_METRICS_HEADER].assign(date=metrics["date"].dt.date)
    _write_csv(directory / "global_metrics.csv", pa.Table.from_pandas(frame, preserve_index=False))
