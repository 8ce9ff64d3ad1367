"""Independent references for the statistics: TA-Lib, plain pandas and plain Python.

They compute each value the slow, obvious way, straight from the definitions in the README, and
import nothing of the package: the numbers of the definitions are written here again.
"""

import math

import numpy as np
import pandas as pd
import talib

LOOKBACK_DAYS = 300


def rsi_reference(window_closes: np.ndarray, period: int) -> float | None:
    """TA-Lib's RSI of the window's last close; None when undefined by the definition."""
    if len(window_closes) < period + 1 or not np.any(np.diff(window_closes) != 0):
        return None
    return float(talib.RSI(window_closes, timeperiod=period)[-1])


def std_reference(window_closes: np.ndarray, window: int) -> float | None:
    """The population (ddof=0) standard deviation of the last ``window`` closes, by pandas."""
    if len(window_closes) < window:
        return None
    return float(pd.Series(window_closes[-window:]).std(ddof=0))


def rolling_reference(
    stored: pd.DataFrame,
    days: pd.DatetimeIndex,
    rsi_period: int = 14,
    std_window: int = 14,
    lookback_days: int = LOOKBACK_DAYS,
) -> pd.DataFrame:
    """One row per stored candle dated in ``days``: (coin_id, trade_date) -> rsi, std_dev."""
    rows = []
    for coin_id, coin in stored.groupby("coin_id"):
        coin = coin.sort_values("trade_date")
        dates = coin["trade_date"].to_numpy(dtype="datetime64[D]")
        all_closes = coin["close"].to_numpy(dtype="float64")
        for day in coin["trade_date"][coin["trade_date"].isin(days)]:
            end = np.datetime64(day.date(), "D")
            in_window = (dates >= end - np.timedelta64(lookback_days, "D")) & (dates <= end)
            closes = all_closes[in_window]
            rows.append(
                {
                    "coin_id": coin_id,
                    "trade_date": day,
                    "rsi": rsi_reference(closes, rsi_period),
                    "std_dev": std_reference(closes, std_window),
                }
            )
    return pd.DataFrame(rows).set_index(["coin_id", "trade_date"]).sort_index()


def returns_reference(stored: pd.DataFrame, days: pd.DatetimeIndex, n: int) -> pd.DataFrame:
    """Calendar-indexed closes per coin, shifted by n days: (coin_id, trade_date) -> return.

    A zero earlier close has no return."""
    closes = stored.pivot(index="trade_date", columns="coin_id", values="close").asfreq("D")
    earlier = closes.shift(n)
    returns = (closes / earlier.where(earlier != 0) - 1).loc[closes.index.isin(days)]
    long = returns.stack().rename("period_return").dropna()
    long.index = long.index.set_names(["trade_date", "coin_id"])
    return long.reorder_levels(["coin_id", "trade_date"]).sort_index().to_frame()


def ranking_reference(
    returns: pd.DataFrame, size: int, highest_first: bool
) -> list[tuple[pd.Timestamp, int, int, str, float]]:
    """(trade_date, rank, coin_id, ticker, return) rows, sorted with plain Python."""
    result = []
    for day, group in returns.groupby("trade_date"):
        entries = list(group[["coin_id", "ticker", "period_return"]].itertuples(index=False))
        entries.sort(
            key=lambda e: (
                -e.period_return if highest_first else e.period_return,
                e.ticker,
                e.coin_id,
            )
        )
        for rank, entry in enumerate(entries[:size], start=1):
            result.append((day, rank, entry.coin_id, entry.ticker, entry.period_return))
    return result


def assert_rolling_matches(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same rows; RSI within 1e-6 (the definition's tolerance), std_dev to 1e-7 relative."""
    assert list(actual.index) == list(expected.index)
    for key, row in expected.iterrows():
        assert_close(actual.at[key, "rsi"], row["rsi"], abs_tol=1e-6, what=f"rsi {key}")
        assert_close(
            actual.at[key, "std_dev"],
            row["std_dev"],
            abs_tol=1e-12,
            rel_tol=1e-7,
            what=f"std {key}",
        )


def assert_close(
    actual: float | None,
    expected: float | None,
    *,
    abs_tol: float,
    rel_tol: float = 0.0,
    what: str = "",
) -> None:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        assert actual is None or math.isnan(actual), f"{what}: expected NULL, got {actual}"
        return
    assert actual is not None and not math.isnan(actual), f"{what}: expected {expected}, got NULL"
    assert math.isclose(actual, expected, abs_tol=abs_tol, rel_tol=rel_tol), (
        f"{what}: {actual} != {expected}"
    )
