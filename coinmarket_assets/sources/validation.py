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
