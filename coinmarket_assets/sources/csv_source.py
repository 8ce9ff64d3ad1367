"""``csv:DIR``: files in the layout of CoinMarketCap daily exports.

- ``DIR/coins.csv``: ``coin_id,ticker,name,slug``, optionally ``rank``, ``is_active`` (1/0 or
  true/false), ``first_historical_day`` and ``last_historical_day`` (2013-04-27) and ``tags``
  (CoinMarketCap tag slugs, ';'-separated: ``stablecoin;asset-backed-stablecoin``).
- ``DIR/daily/<coin_id>.csv``, else ``DIR/daily/<TICKER>.csv`` (tickers are not unique in a
  whole market): ``date,open,high,low,close,volume,market_cap``.
- ``DIR/listings.csv`` (for ``COINMARKET_TICKERS=top:N``): each day's listing, see
  ``csv_listings``. The coin map takes a coin's life from it where coins.csv is silent.
- ``DIR/global_metrics.csv`` (optional): the whole market's figures of each day, see
  ``global_metrics``.

A coin without a daily file raises ``MissingCandlesError`` naming it: with explicit tickers that
is an error; in top:N mode the asset decides (a listed coin may have no candles).
"""

from collections.abc import Iterator, Sequence
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
    MissingCandlesError,
    NoGlobalMetricsError,
    NoHistoricalListingsError,
    SourceError,
    tag_text,
)
from coinmarket_assets.sources.csv_listings import (
    LISTINGS_FILE,
    read_listing_batches,
    read_listing_lives,
    read_listing_rows,
)
from coinmarket_assets.sources.global_metrics import GLOBAL_METRICS_FILE, read_global_metrics_csv
from coinmarket_assets.sources.validation import (
    check_listing_ranks,
    check_listing_values,
    validated_candles,
)

COINS_HEADER = ["coin_id", "ticker", "name", "slug"]
LIFE_COLUMNS = ["is_active", "first_historical_day", "last_historical_day"]
_TRUE, _FALSE = {"1", "true"}, {"0", "false"}
DAILY_HEADER = ["date", *CANDLE_FIELDS]


class CsvSource(MarketDataSource):
    """Local files in the layout of CoinMarketCap daily exports."""

    name = "csv"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        if not (directory / "coins.csv").is_file():
            raise SourceError(f"{self.name} source: {directory / 'coins.csv'} does not exist")

    def listing(self) -> pd.DataFrame:
        return _read_coins(self.directory / "coins.csv")[LISTING_COLUMNS]

    def coin_status(self, coins: Sequence[Coin]) -> pd.DataFrame:
        lives = self.coin_map().set_index("coin_id")
        rows = [self._status(coin, lives) for coin in coins]
        return _status_frame(pd.DataFrame(rows, columns=STATUS_COLUMNS))

    def _status(self, coin: Coin, lives: pd.DataFrame) -> dict[str, object]:
        candles = self.published_candles(coin)
        day = candles["trade_date"].iloc[-1] if len(candles) else None
        newest = validated_candles(candles.iloc[-1:], day.date(), day.date()) if day else None
        life = lives.loc[coin.coin_id] if coin.coin_id in lives.index else None

        def known(column: str, otherwise: object = None) -> object:
            value = life[column] if life is not None else None
            return otherwise if value is None or pd.isna(value) else value

        return {
            "coin_id": coin.coin_id,
            "ticker": coin.ticker,
            "coin_name": coin.name,
            "slug": coin.slug,
            "rank": known("rank"),
            "market_cap": float(newest["market_cap"].iloc[0]) if day else None,
            # A daily candle is complete at the midnight (UTC) that ends its day.
            "last_update": (day + timedelta(days=1)).tz_localize("UTC") if day else None,
            "is_active": known("is_active"),
            # Without a coin map, the candle file tells the days the source has.
            "first_historical_day": known("first_historical_day", candles["trade_date"].min()),
            "last_historical_day": known("last_historical_day", day),
            "tags": known("tags"),
        }

    def coin_map(self) -> pd.DataFrame:
        """coins.csv, dead coins included; where it is silent (no ``is_active`` ...), each coin's
        life from listings.csv: first and last listed day, active if listed on its newest day,
        rank on that day, market cap, names and tags of its last listed day. Coins only in
        listings.csv are included."""
        coins = _read_coins(self.directory / "coins.csv").set_index("coin_id")
        path = self.directory / LISTINGS_FILE
        if path.is_file():
            coins = coins.combine_first(_lives(path))
        return _status_frame(coins.reset_index().reindex(columns=STATUS_COLUMNS))

    def historical_listings(self, first_day: date, last_day: date, depth: int) -> pd.DataFrame:
        path = self._listings_file()
        return _checked_listings(read_listing_rows(path, first_day, last_day), depth, path)

    def historical_listing_batches(
        self, first_day: date, last_day: date, depth: int, days: int
    ) -> Iterator[pd.DataFrame]:
        """One pass over listings.csv for all the batches (see ``read_listing_batches``)."""
        path = self._listings_file()
        for rows in read_listing_batches(path, first_day, last_day, days):
            yield _checked_listings(rows, depth, path)

    def _listings_file(self) -> Path:
        path = self.directory / LISTINGS_FILE
        if not path.is_file():
            raise NoHistoricalListingsError(
                f"{self.name} source: {path} does not exist; COINMARKET_TICKERS=top:N reads "
                "each day's listing from it"
            )
        return path

    def global_metrics(self, first_day: date, last_day: date) -> pd.DataFrame:
        path = self.directory / GLOBAL_METRICS_FILE
        if not path.is_file():
            raise NoGlobalMetricsError(f"{self.name} source: {path} does not exist")
        return read_global_metrics_csv(path, first_day, last_day)

    def daily_candles(self, coins: Sequence[Coin], first_day: date, last_day: date) -> pd.DataFrame:
        missing = {coin: self.no_candles(coin) for coin in coins}
        missing = {coin: message for coin, message in missing.items() if message}
        if missing:
            raise MissingCandlesError("; ".join(missing.values()), list(missing))
        return pd.concat([self.published_candles(coin) for coin in coins], ignore_index=True)

    def no_candles(self, coin: Coin) -> str | None:
        """Why the source has no candles of ``coin`` at all, or None when it has a file."""
        if self._daily_file(coin).is_file():
            return None
        by_id = self.directory / "daily" / f"{coin.coin_id}.csv"
        return (
            f"{self.name} source: no daily file for {coin.ticker} (id {coin.coin_id}): neither "
            f"{by_id} nor {by_id.with_name(f'{coin.ticker}.csv')} exists"
        )

    def published_candles(self, coin: Coin) -> pd.DataFrame:
        """All of the coin's candles as published: ``CANDLE_COLUMNS``, values not yet checked,
        ``trade_date`` ascending. Sources of other file formats override this."""
        message = self.no_candles(coin)
        if message:
            raise MissingCandlesError(message, [coin])
        return _read_daily(self._daily_file(coin), coin)

    def _daily_file(self, coin: Coin) -> Path:
        by_id = self.directory / "daily" / f"{coin.coin_id}.csv"
        return by_id if by_id.is_file() else by_id.with_name(f"{coin.ticker}.csv")


def _status_frame(frame: pd.DataFrame) -> pd.DataFrame:
    days = ["first_historical_day", "last_historical_day"]
    typed = frame.astype({"rank": "Int64", "market_cap": "float64", "is_active": "boolean"})
    return typed.assign(
        **{day: pd.to_datetime(typed[day]).astype("datetime64[us]") for day in days}
    )


def _checked_listings(rows: pd.DataFrame, depth: int, path: Path) -> pd.DataFrame:
    """Whole days of listings.csv, checked, each cut to its ``depth`` best-ranked coins."""
    ranked = check_listing_ranks(rows, str(path))
    kept = ranked.groupby("trade_date", sort=False).head(depth).reset_index(drop=True)
    return check_listing_values(kept, str(path))


def _lives(path: Path) -> pd.DataFrame:
    """Each listed coin's life, indexed by coin_id, in ``STATUS_COLUMNS``."""
    last = check_listing_ranks(read_listing_lives(path), str(path))
    last = check_listing_values(last, str(path)).set_index("coin_id")
    active = last["trade_date"] == last["trade_date"].max()
    return pd.DataFrame(
        {
            "ticker": last["ticker"],
            "coin_name": last["coin_name"],
            "slug": last["slug"],
            # A coin no longer listed has no rank, as CoinMarketCap's map gives none.
            "rank": last["rank"].where(active).astype("Int64"),
            "market_cap": last["market_cap"],
            "last_update": (last["trade_date"] + pd.Timedelta(days=1)).dt.tz_localize("UTC"),
            "is_active": active.astype("boolean"),
            "first_historical_day": last["first_day"],
            "last_historical_day": last["trade_date"],
            "tags": last["tags"],
        }
    )


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
            "is_active": _flags(path, frame, ids),
            "first_historical_day": _days(path, frame, ids, "first_historical_day"),
            "last_historical_day": _days(path, frame, ids, "last_historical_day"),
            "tags": frame["tags"].map(tag_text) if "tags" in frame else None,
        }
    )


def _flags(path: Path, frame: pd.DataFrame, ids: pd.Series) -> pd.Series:
    """The optional ``is_active`` column: 1/0 or true/false, empty when unknown."""
    text = frame.get("is_active", pd.Series("", index=frame.index)).str.strip().str.lower()
    bad = ~text.isin(_TRUE | _FALSE | {""})
    if bad.any():
        shown = [f"coin {i}: {v!r}" for i, v in zip(ids[bad], text[bad], strict=True)][:5]
        raise SourceError(f"{path}: is_active must be 1, 0, true or false, got {shown}")
    return text.map(lambda v: v in _TRUE if v else None).astype("boolean")


def _days(path: Path, frame: pd.DataFrame, ids: pd.Series, column: str) -> pd.Series:
    """An optional day column (2013-04-27), empty when unknown."""
    text = frame.get(column, pd.Series("", index=frame.index)).str.strip()
    days = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = days.isna() & (text != "")
    if bad.any():
        shown = [f"coin {i}: {v!r}" for i, v in zip(ids[bad], text[bad], strict=True)][:5]
        raise SourceError(f"{path}: {column} must look like 2013-04-27, got {shown}")
    return days.astype("datetime64[us]")


def _read_daily(path: Path, coin: Coin) -> pd.DataFrame:
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
