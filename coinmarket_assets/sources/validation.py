"""Checks every candle before anything is stored: a bad value fails its day, naming it, or with
``COINMARKET_ON_BAD_ROWS=skip`` the bad rows stay out and are reported."""

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from coinmarket_assets.sources.base import CANDLE_COLUMNS, CANDLE_FIELDS, SourceError

MAX_PROBLEMS_LISTED = 20


class InvalidCandlesError(SourceError):
    """Candles with missing, non-numeric, non-finite, negative or inconsistent values."""


@dataclass
class CheckedCandles:
    """The good candles as floats, and a message for each bad row left out."""

    candles: pd.DataFrame
    skipped: list[str] = field(default_factory=list)


def _problems(candles: pd.DataFrame, numbers: dict[str, pd.Series]) -> list[tuple[int, str]]:
    """(row position, message) for every problem of every row; ``numbers`` holds each field
    converted to floats (NaN where it is not a number)."""
    found: list[tuple[int, str]] = []
    for name in CANDLE_FIELDS:
        raw = candles[name]
        values = numbers[name]
        for p in np.flatnonzero(raw.isna().to_numpy()):
            found.append((p, f"{name} is missing"))
        for p in np.flatnonzero((values.isna() & raw.notna()).to_numpy()):
            found.append((p, f"{name} is not a number ({raw.iat[p]!r})"))
        for p in np.flatnonzero(np.isinf(values.to_numpy())):
            found.append((p, f"{name} is infinite"))
        for p in np.flatnonzero((values < 0).to_numpy()):
            found.append((p, f"{name} is negative ({values.iat[p]})"))
    high, low = numbers["high"], numbers["low"]
    for p in np.flatnonzero((high < low).to_numpy()):
        found.append((p, f"high {high.iat[p]} is below low {low.iat[p]}"))
    duplicated = candles.duplicated(["coin_id", "trade_date"], keep=False).to_numpy()
    for p in np.flatnonzero(duplicated):
        found.append((p, "trade_date appears more than once"))
    return [(p, f"{_label(candles, p)}: {message}") for p, message in found]


def _label(candles: pd.DataFrame, position: int) -> str:
    # Built for bad rows only: formatting a label for each of a million good rows costs seconds.
    row = candles.iloc[position]
    return f"{row['ticker']} {row['trade_date']:%Y-%m-%d}"


def check_candles(
    candles: pd.DataFrame, first_day: date, last_day: date, *, skip_bad_rows: bool = False
) -> CheckedCandles:
    """The candles of first_day..last_day as floats.

    ``candles`` holds ``CANDLE_COLUMNS`` with ``trade_date`` as datetimes and values as published
    (text or numbers); days outside the range are dropped first. A bad row raises
    ``InvalidCandlesError`` naming coin, day and field, or, with ``skip_bad_rows``, is left out.
    """
    days = candles["trade_date"]
    in_range = candles[(days >= pd.Timestamp(first_day)) & (days <= pd.Timestamp(last_day))]
    numbers = {
        name: pd.to_numeric(in_range[name], errors="coerce").astype("float64")
        for name in CANDLE_FIELDS
    }
    problems = _problems(in_range, numbers)
    messages = list(dict.fromkeys(message for _, message in problems))
    if problems and not skip_bad_rows:
        shown = messages[:MAX_PROBLEMS_LISTED]
        more = len(messages) - len(shown)
        suffix = f"\n  ... and {more} more" if more else ""
        raise InvalidCandlesError(
            "Invalid candles, nothing was written for these days:\n  " + "\n  ".join(shown) + suffix
        )
    bad = np.zeros(len(in_range), dtype=bool)
    bad[[position for position, _ in problems]] = True
    good = in_range.assign(**numbers)[~bad]
    ordered = good[CANDLE_COLUMNS].sort_values(["coin_id", "trade_date"], ignore_index=True)
    return CheckedCandles(ordered, messages)


def validated_candles(candles: pd.DataFrame, first_day: date, last_day: date) -> pd.DataFrame:
    """``check_candles`` that fails on any bad row."""
    return check_candles(candles, first_day, last_day).candles


class InvalidListingsError(SourceError):
    """Historical listings with missing, non-numeric, non-finite or out-of-range values."""


# The ranking fields decide which rows a day keeps; the others are checked on kept rows only.
LISTING_TEXT_FIELDS = ("ticker", "coin_name", "slug")
LISTING_OPTIONAL_FIELDS = (
    "market_cap",
    "volume_24h",
    "circulating_supply",
    "total_supply",
    "max_supply",
)


def check_listing_ranks(rows: pd.DataFrame, where: str) -> pd.DataFrame:
    """``rows`` (``HISTORICAL_LISTING_COLUMNS``, ``trade_date`` as datetimes, other values as
    published) with whole-number ``coin_id`` and ``rank``, sorted by day, rank and coin id.

    Raises ``InvalidListingsError`` naming coin, day and field when an id or rank is not a whole
    number >= 1, or a coin is listed twice on a day.
    """
    ids, ranks = _numbers(rows["coin_id"]), _numbers(rows["rank"])
    problems = _whole_problems(rows, "coin_id", ids) + _whole_problems(rows, "rank", ranks)
    keys = pd.DataFrame({"day": rows["trade_date"], "coin": ids})
    repeated = keys.duplicated(keep=False).to_numpy() & ids.notna().to_numpy()
    problems += [(p, "coin_id appears more than once that day") for p in np.flatnonzero(repeated)]
    _fail_on(problems, rows, where)
    ranked = rows.assign(coin_id=ids.astype("int64"), rank=ranks.astype("int64"))
    return ranked.sort_values(["trade_date", "rank", "coin_id"], ignore_index=True)


def check_listing_values(ranked: pd.DataFrame, where: str) -> pd.DataFrame:
    """The rows that ``check_listing_ranks`` returned (or some of them) with their values as
    floats: names present, ``price`` finite and > 0, the other values finite and >= 0 or empty.
    Raises ``InvalidListingsError`` naming coin, day and field of every bad value."""
    problems: list[tuple[int, str]] = []
    for name in LISTING_TEXT_FIELDS:
        raw = ranked[name]
        blank = raw.isna().to_numpy() | (raw.astype("str").str.strip() == "").to_numpy()
        problems += [(p, f"{name} is missing") for p in np.flatnonzero(blank)]
    numbers = {name: _numbers(ranked[name]) for name in ("price", *LISTING_OPTIONAL_FIELDS)}
    for name, values in numbers.items():
        raw = ranked[name]
        if name == "price":
            problems += [(p, "price is missing") for p in np.flatnonzero(raw.isna().to_numpy())]
        problems += _finite_problems(raw, values, name)
        low = (values <= 0) if name == "price" else (values < 0)
        word = "not positive" if name == "price" else "negative"
        problems += [(p, f"{name} is {word} ({values.iat[p]})") for p in np.flatnonzero(low)]
    _fail_on(problems, ranked, where)
    return ranked.assign(**numbers)


def _numbers(raw: pd.Series) -> pd.Series:
    return pd.to_numeric(raw, errors="coerce").astype("float64")


def _finite_problems(raw: pd.Series, values: pd.Series, name: str) -> list[tuple[int, str]]:
    text = (values.isna() & raw.notna()).to_numpy()
    found = [(p, f"{name} is not a number ({raw.iat[p]!r})") for p in np.flatnonzero(text)]
    found += [(p, f"{name} is infinite") for p in np.flatnonzero(np.isinf(values.to_numpy()))]
    return found


def _whole_problems(rows: pd.DataFrame, name: str, values: pd.Series) -> list[tuple[int, str]]:
    raw = rows[name]
    found = [(p, f"{name} is missing") for p in np.flatnonzero(raw.isna().to_numpy())]
    found += _finite_problems(raw, values, name)
    finite = values.to_numpy()
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(finite) & ((finite < 1) | (finite != np.floor(finite)))
    found += [(p, f"{name} is not a whole number >= 1 ({raw.iat[p]})") for p in np.flatnonzero(bad)]
    return found


def _fail_on(problems: list[tuple[int, str]], rows: pd.DataFrame, where: str) -> None:
    if not problems:
        return
    messages = list(dict.fromkeys(f"{_listing_label(rows, p)}: {m}" for p, m in sorted(problems)))
    shown = messages[:MAX_PROBLEMS_LISTED]
    more = len(messages) - len(shown)
    suffix = f"\n  ... and {more} more" if more else ""
    raise InvalidListingsError(
        f"Invalid listings in {where}, nothing was written for these days:\n  "
        + "\n  ".join(shown)
        + suffix
    )


def _listing_label(rows: pd.DataFrame, position: int) -> str:
    row = rows.iloc[position]
    coin = row["coin_id"]
    if isinstance(coin, float) and coin.is_integer():
        coin = int(coin)  # an id column with an empty cell is read as floats
    return f"coin {coin} ({row['ticker']}) {row['trade_date']:%Y-%m-%d}"
