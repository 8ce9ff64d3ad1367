"""Per-coin statistics of stored daily closes: Wilder's RSI, rolling standard deviation, returns.

Input frames hold one row per coin and stored day: ``coin_id``, ``ticker``, ``trade_date``
(datetime64, midnight) and ``close``. A window counts stored rows, so a missing day is skipped,
never filled.
"""

from typing import TypeVar

import numpy as np
import pandas as pd

from coinmarket_assets.storage.tables import TABLES

ROLLING_COLUMNS = list(TABLES["historical_rolling"].columns)
RETURN_COLUMNS = list(TABLES["period_returns"].columns)
_Number = TypeVar("_Number", float, np.ndarray)


def wilder_rsi(
    days: np.ndarray, closes: np.ndarray, targets: np.ndarray, period: int, lookback_days: int
) -> np.ndarray:
    """RSI at each target position over the closes dated within [day - lookback_days, day].

    Equals TA-Lib's ``RSI(window_closes, period)[-1]``: the first ``period`` changes seed the
    average gain and loss, later ones are smoothed as ``(avg * (period - 1) + x) / period``.
    NaN when a window holds fewer than ``period + 1`` closes or all its changes are zero.
    """
    starts = np.searchsorted(days, days[targets] - np.timedelta64(lookback_days, "D"), "left")
    counts = targets - starts  # changes in each target's window
    changes = np.diff(closes)
    gains = np.where(changes > 0, changes, 0.0)
    losses = np.where(changes < 0, -changes, 0.0)
    avg_gain, avg_loss = np.zeros(len(targets)), np.zeros(len(targets))
    # A full window (a close on every day of the lookback) is one weighted sum, a dot product
    # whose order of additions depends only on the window: the same value whatever the run's
    # other days, so rerunning one day rewrites the same bytes.
    weighted = (counts == lookback_days) & (counts >= period)
    if weighted.any():
        weights = _wilder_weights(lookback_days, period)
        avg_gain[weighted] = np.correlate(gains, weights, "valid")[starts[weighted]]
        avg_loss[weighted] = np.correlate(losses, weights, "valid")[starts[weighted]]
    # Other windows are smoothed by the recurrence itself, whose additions are the same
    # whether one pass serves all windows that begin at the first loaded close or not.
    from_first = ~weighted & (counts >= period) & (starts == 0)
    avg_gain[from_first], avg_loss[from_first] = _smoothed_from_first(
        gains, losses, counts[from_first], period
    )
    stepwise = ~weighted & (counts >= period) & (starts > 0)
    avg_gain[stepwise], avg_loss[stepwise] = _smoothed_stepwise(
        gains, losses, starts[stepwise], counts[stepwise], period
    )
    nonzero_before = np.concatenate(([0], np.cumsum(changes != 0)))
    moved = nonzero_before[targets] > nonzero_before[starts]
    total = avg_gain + avg_loss
    with np.errstate(divide="ignore", invalid="ignore"):
        # As TA-Lib: 0 when the smoothed moves have decayed to exactly zero.
        rsi = np.where(total == 0.0, 0.0, 100.0 * (avg_gain / total))
    return np.where((counts >= period) & moved, rsi, np.nan)


def _wilder_weights(count: int, period: int) -> np.ndarray:
    """Each change's weight in the smoothed average of a window of ``count`` changes, oldest
    first: the seed's ``period`` changes share ``a ** (count - period) / period``, each later
    one ``a ** (changes after it) / period``, where a = (period - 1) / period."""
    decay = (period - 1) / period
    after = np.arange(count - 1, -1, -1, dtype="float64")
    after[:period] = count - period
    return decay**after / period


def _smoothed_from_first(
    gains: np.ndarray, losses: np.ndarray, counts: np.ndarray, period: int
) -> tuple[np.ndarray, np.ndarray]:
    """Wilder's average gain and loss of windows that all begin at the first change, one
    window per entry of ``counts`` (each at least ``period``), by one run of the recurrence."""
    steps = int(counts.max(initial=0))
    gain_after, loss_after = np.zeros(steps + 1), np.zeros(steps + 1)
    avg_gain = avg_loss = 0.0
    pairs = zip(gains[:steps].tolist(), losses[:steps].tolist(), strict=True)
    for step, (gain, loss) in enumerate(pairs):
        avg_gain = _smoothed(avg_gain, gain, step, period)
        avg_loss = _smoothed(avg_loss, loss, step, period)
        gain_after[step + 1], loss_after[step + 1] = avg_gain, avg_loss
    return gain_after[counts], loss_after[counts]


def _smoothed_stepwise(
    gains: np.ndarray, losses: np.ndarray, starts: np.ndarray, counts: np.ndarray, period: int
) -> tuple[np.ndarray, np.ndarray]:
    """Wilder's average gain and loss of each window, by the recurrence itself."""
    avg_gain, avg_loss = np.zeros(len(starts)), np.zeros(len(starts))
    for step in range(int(counts.max(initial=0))):
        active = step < counts
        index = np.where(active, starts + step, 0)
        gain, loss = gains[index], losses[index]
        avg_gain = np.where(active, _smoothed(avg_gain, gain, step, period), avg_gain)
        avg_loss = np.where(active, _smoothed(avg_loss, loss, step, period), avg_loss)
    return avg_gain, avg_loss


def _smoothed(average: _Number, change: _Number, step: int, period: int) -> _Number:
    """Wilder's average after the change at ``step`` (from 0) of a window: the first ``period``
    changes are summed and their mean seeds it, then ``(avg * (period - 1) + x) / period``.
    The one definition both recurrences use, so that they give the same bits."""
    if step < period - 1:
        return average + change
    if step == period - 1:
        return (average + change) / period
    return (average * (period - 1) + change) / period


def trailing_std(
    days: np.ndarray, closes: np.ndarray, targets: np.ndarray, window: int, lookback_days: int
) -> np.ndarray:
    """Population standard deviation of the ``window`` stored closes ending at each target.

    NaN until ``window`` closes are stored within the lookback of the target day.
    """
    result = np.full(len(targets), np.nan)
    if len(closes) < window:
        return result
    first = targets - window + 1
    earliest = days[targets] - np.timedelta64(lookback_days, "D")
    full = (first >= 0) & (days[np.maximum(first, 0)] >= earliest)
    windows = np.lib.stride_tricks.sliding_window_view(closes, window)
    result[full] = windows[first[full]].std(axis=1)
    return result


def rolling_statistics(
    candles: pd.DataFrame,
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    *,
    rsi_period: int,
    std_window: int,
    lookback_days: int,
) -> pd.DataFrame:
    """RSI and standard deviation for every stored candle dated first_day..last_day."""
    frames = []
    for _, coin in candles.sort_values(["coin_id", "trade_date"]).groupby("coin_id", sort=True):
        days = coin["trade_date"].to_numpy(dtype="datetime64[D]")
        closes = coin["close"].to_numpy(dtype="float64")
        targets = np.flatnonzero(
            (coin["trade_date"] >= first_day).to_numpy()
            & (coin["trade_date"] <= last_day).to_numpy()
        )
        if not len(targets):
            continue
        frames.append(
            coin.iloc[targets][["coin_id", "ticker", "trade_date"]].assign(
                rsi=wilder_rsi(days, closes, targets, rsi_period, lookback_days),
                std_dev=trailing_std(days, closes, targets, std_window, lookback_days),
            )
        )
    if not frames:
        return _empty(ROLLING_COLUMNS, candles)
    return pd.concat(frames, ignore_index=True)[ROLLING_COLUMNS]


def period_returns(
    candles: pd.DataFrame, first_day: pd.Timestamp, last_day: pd.Timestamp, days: int
) -> pd.DataFrame:
    """close(D) / close(D - days calendar days) - 1 for days D in first_day..last_day.

    No row where either close is missing, or where the earlier close is zero (undefined).
    """
    closes = candles[["coin_id", "ticker", "trade_date", "close"]]
    current = closes[(closes["trade_date"] >= first_day) & (closes["trade_date"] <= last_day)]
    earlier = closes[["coin_id", "trade_date", "close"]].assign(
        trade_date=closes["trade_date"] + pd.Timedelta(days=days)
    )
    joined = current.merge(earlier, on=["coin_id", "trade_date"], suffixes=("", "_earlier"))
    joined = joined[joined["close_earlier"] != 0.0]
    joined["period_return"] = joined["close"] / joined["close_earlier"] - 1.0
    return joined.sort_values(["coin_id", "trade_date"], ignore_index=True)[RETURN_COLUMNS]


def _empty(columns: list[str], like: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in columns})
    return frame.astype(
        {"coin_id": "int64", "ticker": "object", "trade_date": like["trade_date"].dtype}
    )
