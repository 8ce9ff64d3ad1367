"""The whole market's figures of each day (``global_metrics``): checked rows, whatever the
source, and ``DIR/global_metrics.csv`` of the ``csv:`` source.

``global_metrics.csv``: header ``date`` then the table's columns (``total_market_cap``,
``total_volume_24h``, ``altcoin_market_cap``, ``altcoin_volume_24h``, ``btc_dominance``,
``eth_dominance``, ``active_cryptocurrencies``, ``active_exchanges``, ``active_market_pairs``), one
row per UTC day, its values as the market stood at the end of that day; any value may be empty
(unknown); other columns are ignored.
"""

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from coinmarket_assets.sources.base import GLOBAL_METRIC_COLUMNS, SourceError
from coinmarket_assets.sources.validation import MAX_PROBLEMS_LISTED

GLOBAL_METRICS_FILE = "global_metrics.csv"
METRIC_FIELDS = GLOBAL_METRIC_COLUMNS[1:]
DOMINANCE_FIELDS = ("btc_dominance", "eth_dominance")
COUNT_FIELDS = ("active_cryptocurrencies", "active_exchanges", "active_market_pairs")


class InvalidGlobalMetricsError(SourceError):
    """Global metrics with a value that is not a number, negative, or a share outside 0..100."""


def checked_global_metrics(rows: pd.DataFrame, where: str) -> pd.DataFrame:
    """``rows`` (``trade_date`` as datetimes, values as published) in the table's columns and
    types, by day: empty values stay NULL; a value that is not a finite number, is negative, a
    dominance above 100, a count that is not whole, or a day given twice fails, naming the day
    and field of each."""
    problems: list[tuple[int, str]] = []
    numbers = {}
    for name in METRIC_FIELDS:
        raw = rows[name] if name in rows else pd.Series(None, index=rows.index, dtype="object")
        numbers[name] = values = pd.to_numeric(raw, errors="coerce").astype("float64")
        problems += _value_problems(name, raw, values)
    twice = rows.duplicated("trade_date", keep=False).to_numpy()
    problems += [(p, "the day appears more than once") for p in np.flatnonzero(twice)]
    if problems:
        _fail(problems, rows, where)
    frame = pd.DataFrame({"trade_date": rows["trade_date"].astype("datetime64[us]"), **numbers})
    frame = frame.astype(dict.fromkeys(COUNT_FIELDS, "Int64"))
    return frame[GLOBAL_METRIC_COLUMNS].sort_values("trade_date", ignore_index=True)


def no_global_metrics() -> pd.DataFrame:
    """An empty frame in the table's columns and types."""
    return checked_global_metrics(pd.DataFrame({"trade_date": pd.Series([], "datetime64[us]")}), "")


def _value_problems(name: str, raw: pd.Series, values: pd.Series) -> list[tuple[int, str]]:
    given = raw.notna().to_numpy() & (raw.astype("str").str.strip() != "").to_numpy()
    found = [
        (p, f"{name} is not a number ({raw.iat[p]!r})")
        for p in np.flatnonzero(given & values.isna().to_numpy())
    ]
    finite = values.to_numpy()
    found += [(p, f"{name} is infinite") for p in np.flatnonzero(np.isinf(finite))]
    with np.errstate(invalid="ignore"):
        found += [(p, f"{name} is negative ({finite[p]})") for p in np.flatnonzero(finite < 0)]
        if name in DOMINANCE_FIELDS:
            above = np.flatnonzero(np.isfinite(finite) & (finite > 100))
            found += [(p, f"{name} is above 100 % ({finite[p]})") for p in above]
        if name in COUNT_FIELDS:
            broken = np.flatnonzero(np.isfinite(finite) & (finite != np.floor(finite)))
            found += [(p, f"{name} is not a whole number ({finite[p]})") for p in broken]
    return found


def _fail(problems: list[tuple[int, str]], rows: pd.DataFrame, where: str) -> None:
    days = rows["trade_date"]
    messages = list(dict.fromkeys(f"{days.iat[p]:%Y-%m-%d}: {m}" for p, m in sorted(problems)))
    shown = messages[:MAX_PROBLEMS_LISTED]
    more = f"\n  ... and {len(messages) - len(shown)} more" if len(messages) > len(shown) else ""
    raise InvalidGlobalMetricsError(
        f"Invalid global metrics in {where}, nothing was written for these days:\n  "
        + "\n  ".join(shown)
        + more
    )


def read_global_metrics_csv(path: Path, first_day: date, last_day: date) -> pd.DataFrame:
    """The checked rows of ``path`` dated first_day..last_day (one row a day, one file of at
    most a few thousand rows: read whole). Raises ``SourceError`` naming a missing column or a
    date not like 2013-04-27, ``InvalidGlobalMetricsError`` naming day and field of a bad value."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    missing = [name for name in ["date", *METRIC_FIELDS] if name not in raw.columns]
    if missing:
        raise SourceError(f"{path}: missing columns {', '.join(missing)}")
    text = raw["date"].fillna("").str.strip()
    days = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    if days.isna().any():
        bad = text[days.isna()].head(5).tolist()
        raise SourceError(f"{path}: dates must look like 2013-04-27, got {bad}")
    kept = (days >= pd.Timestamp(first_day)) & (days <= pd.Timestamp(last_day))
    rows = raw.loc[kept, METRIC_FIELDS].assign(trade_date=days[kept])
    return checked_global_metrics(rows.reset_index(drop=True), str(path))
