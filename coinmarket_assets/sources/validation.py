"""Checks every candle before anything is stored: a bad value fails its day, naming it."""

from datetime import date

import numpy as np
import pandas as pd

from coinmarket_assets.sources.base import CANDLE_COLUMNS, CANDLE_FIELDS, SourceError

MAX_PROBLEMS_LISTED = 20


class InvalidCandlesError(SourceError):
    """Candles with missing, non-numeric, non-finite, negative or inconsistent values."""


def _problems(candles: pd.DataFrame) -> list[str]:
    problems: list[str] = []
    labels = candles["ticker"].astype(str) + " " + candles["trade_date"].dt.strftime("%Y-%m-%d")
    for field in CANDLE_FIELDS:
        raw = candles[field]
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        for position in np.flatnonzero(raw.isna().to_numpy()):
            problems.append(f"{labels.iat[position]}: {field} is missing")
        for position in np.flatnonzero((values.isna() & raw.notna()).to_numpy()):
            problems.append(
                f"{labels.iat[position]}: {field} is not a number ({raw.iat[position]!r})"
            )
        for position in np.flatnonzero(np.isinf(values.to_numpy())):
            problems.append(f"{labels.iat[position]}: {field} is infinite")
        for position in np.flatnonzero((values < 0).to_numpy()):
            problems.append(f"{labels.iat[position]}: {field} is negative ({values.iat[position]})")
    high = pd.to_numeric(candles["high"], errors="coerce")
    low = pd.to_numeric(candles["low"], errors="coerce")
    for position in np.flatnonzero((high < low).to_numpy()):
        problems.append(
            f"{labels.iat[position]}: high {high.iat[position]} is below low {low.iat[position]}"
        )
    duplicated = candles.duplicated(["coin_id", "trade_date"], keep="first").to_numpy()
    for position in np.flatnonzero(duplicated):
        problems.append(f"{labels.iat[position]}: trade_date appears more than once")
    return problems


def validated_candles(candles: pd.DataFrame, first_day: date, last_day: date) -> pd.DataFrame:
    """The candles of first_day..last_day as floats, or ``InvalidCandlesError`` naming each bad one.

    ``candles`` holds ``CANDLE_COLUMNS`` with ``trade_date`` as datetimes and values as published
    (text or numbers). Days outside the range are dropped before checking.
    """
    days = candles["trade_date"]
    in_range = candles[(days >= pd.Timestamp(first_day)) & (days <= pd.Timestamp(last_day))]
    problems = _problems(in_range)
    if problems:
        shown = problems[:MAX_PROBLEMS_LISTED]
        more = len(problems) - len(shown)
        suffix = f"\n  ... and {more} more" if more else ""
        raise InvalidCandlesError(
            "Invalid candles, nothing was written for these days:\n  " + "\n  ".join(shown) + suffix
        )
    result = in_range.copy()
    for field in CANDLE_FIELDS:
        result[field] = pd.to_numeric(in_range[field]).astype("float64")
    return result[CANDLE_COLUMNS].sort_values(["coin_id", "trade_date"], ignore_index=True)
