"""Deterministic generated markets in the csv: source layout, with the real data's quirks:
gaps, flat candles, zero volumes, zero market caps and prices small enough for 1e-05 notation."""

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

FIELDS = ["open", "high", "low", "close", "volume", "market_cap"]


@dataclass
class SyntheticCoin:
    """One coin and its daily candles."""

    coin_id: int
    ticker: str
    name: str
    candles: pd.DataFrame  # date (datetime64), FIELDS as floats

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "-")


@dataclass
class SyntheticMarket:
    """Coins that the csv: and html: sources and the fake CoinMarketCap can serve."""

    coins: list[SyntheticCoin] = field(default_factory=list)

    @classmethod
    def from_csv(cls, directory: Path, tickers: list[str] | None = None) -> "SyntheticMarket":
        """A market read from a csv: source directory, so the test server can serve it."""
        coins = pd.read_csv(directory / "coins.csv")
        if tickers is not None:
            coins = coins[coins["ticker"].isin(tickers)]
        return cls(
            [
                SyntheticCoin(
                    int(row.coin_id),
                    row.ticker,
                    row.name,
                    pd.read_csv(directory / "daily" / f"{row.ticker}.csv", parse_dates=["date"]),
                )
                for row in coins.itertuples()
            ]
        )

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

    def write_csv(self, directory: Path) -> None:
        """``directory`` as a csv: source: coins.csv and ``daily/<TICKER>.csv``."""
        (directory / "daily").mkdir(parents=True, exist_ok=True)
        self.write_coins_csv(directory)
        for coin in self.coins:
            write_daily_csv(directory / "daily" / f"{coin.ticker}.csv", coin.candles)

    def write_coins_csv(self, directory: Path) -> None:
        """``directory/coins.csv`` in the layout the csv: and html: sources read."""
        pd.DataFrame(
            {
                "coin_id": [c.coin_id for c in self.coins],
                "ticker": [c.ticker for c in self.coins],
                "name": [c.name for c in self.coins],
                "slug": [c.slug for c in self.coins],
            }
        ).to_csv(directory / "coins.csv", index=False)


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
