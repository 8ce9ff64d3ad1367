"""``csv:DIR``: coins from ``DIR/coins.csv`` and candles from ``DIR/daily/<TICKER>.csv``."""

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from coinmarket_assets.sources.base import (
    CANDLE_FIELDS,
    LISTING_COLUMNS,
    STATUS_COLUMNS,
    Coin,
    MarketDataSource,
    SourceError,
)
from coinmarket_assets.sources.validation import validated_candles

COINS_HEADER = ["coin_id", "ticker", "name", "slug"]
DAILY_HEADER = ["date", *CANDLE_FIELDS]


class CsvSource(MarketDataSource):
    """Local files in the layout of CoinMarketCap daily exports."""

    name = "csv"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        if not (directory / "coins.csv").is_file():
            raise SourceError(f"{self.name} source: {directory / 'coins.csv'} does not exist")

    def listing(self) -> pd.DataFrame:
        return _read_coins(self.directory / "coins.csv")

    def coin_status(self, coins: Sequence[Coin]) -> pd.DataFrame:
        listing = self.listing().set_index("coin_id")
        rows = []
        for coin in coins:
            newest = self.published_candles(coin).iloc[-1:]
            day = newest["trade_date"].iloc[0] if len(newest) else None
            if day is not None:
                newest = validated_candles(newest, day.date(), day.date())
            rows.append(
                {
                    "coin_id": coin.coin_id,
                    "ticker": coin.ticker,
                    "coin_name": coin.name,
                    "slug": coin.slug,
                    "rank": listing.at[coin.coin_id, "rank"],
                    "market_cap": float(newest["market_cap"].iloc[0]) if day else None,
                    # A daily candle is complete at the midnight (UTC) that ends its day.
                    "last_update": (day + timedelta(days=1)).tz_localize("UTC") if day else None,
                }
            )
        return pd.DataFrame(rows, columns=STATUS_COLUMNS).astype({"rank": "Int64"})

    def daily_candles(self, coins: Sequence[Coin], first_day: date, last_day: date) -> pd.DataFrame:
        return pd.concat([self.published_candles(coin) for coin in coins], ignore_index=True)

    def published_candles(self, coin: Coin) -> pd.DataFrame:
        """All of the coin's candles as published: ``CANDLE_COLUMNS``, values not yet checked,
        ``trade_date`` ascending. Sources of other file formats override this."""
        return _read_daily(self.directory / "daily" / f"{coin.ticker}.csv", coin)


def _read_coins(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in COINS_HEADER if column not in frame.columns]
    if missing:
        raise SourceError(f"{path}: missing columns {', '.join(missing)}")
    ids = pd.to_numeric(frame["coin_id"], errors="coerce")
    if ids.isna().any():
        raise SourceError(f"{path}: coin_id must be a whole number on every row")
    repeated = sorted(set(ids[ids.duplicated()].astype(int)))
    if repeated:
        raise SourceError(f"{path}: coin_id {', '.join(map(str, repeated))} listed more than once")
    ranks = pd.to_numeric(frame["rank"], errors="coerce") if "rank" in frame else None
    return pd.DataFrame(
        {
            "coin_id": ids.astype("int64"),
            "ticker": frame["ticker"].str.strip(),
            "coin_name": frame["name"],
            "slug": frame["slug"],
            "rank": ranks.astype("Int64")
            if ranks is not None
            else pd.array([None] * len(frame), "Int64"),
        },
        columns=LISTING_COLUMNS,
    )


def _read_daily(path: Path, coin: Coin) -> pd.DataFrame:
    if not path.is_file():
        raise SourceError(f"csv source: no daily file for {coin.ticker}: {path} does not exist")
    columns = _read_numbers(path)
    if columns is None:
        columns = _read_text(path)
    dates = pd.Series(columns["date"], dtype="str")
    days = pd.to_datetime(dates, format="%Y-%m-%d", errors="coerce")
    if days.isna().any():
        bad = dates[days.isna()].head(5).tolist()
        raise SourceError(f"{coin.ticker} ({path}): dates must look like 2013-04-27, got {bad}")
    frame = pd.DataFrame(
        {"coin_id": coin.coin_id, "ticker": coin.ticker, "trade_date": days}
        | {field: columns[field] for field in CANDLE_FIELDS}
    )
    if days.is_monotonic_increasing:
        return frame
    return frame.sort_values("trade_date", kind="stable", ignore_index=True)


def _read_numbers(path: Path) -> dict[str, np.ndarray] | None:
    """The file's columns, values as floats (empty fields as NaN), parsed by Arrow: five times as
    fast as text. None when a column is missing or a value is not a plain number, for
    ``_read_text`` to read and validation to name."""
    options = pa_csv.ConvertOptions(
        column_types={"date": pa.string()} | dict.fromkeys(CANDLE_FIELDS, pa.float64()),
        include_columns=DAILY_HEADER,
        null_values=[""],
        strings_can_be_null=True,
    )
    try:
        table = pa_csv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, KeyError):
        return None
    # "nan" parses as NaN: validation calls it "not a number", which needs the text.
    if any(pc.any(pc.is_nan(table[field])).as_py() for field in CANDLE_FIELDS):
        return None
    return {name: table[name].to_numpy(zero_copy_only=False) for name in DAILY_HEADER}


def _read_text(path: Path) -> dict[str, pd.Series]:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    missing = [column for column in DAILY_HEADER if column not in raw.columns]
    if missing:
        raise SourceError(f"{path}: missing columns {', '.join(missing)}")
    return {name: raw[name] for name in DAILY_HEADER}
