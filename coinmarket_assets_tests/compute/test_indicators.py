import numpy as np
import pandas as pd
import pytest

from coinmarket_assets.compute.indicators import (
    period_returns,
    rolling_statistics,
    trailing_std,
    wilder_rsi,
)
from coinmarket_assets_tests.reference import (
    LOOKBACK_DAYS,
    assert_rolling_matches,
    returns_reference,
    rolling_reference,
)
from coinmarket_testkit.synthetic import default_market


def _compute_rolling(
    candles: pd.DataFrame, rsi_period: int = 14, std_window: int = 14
) -> pd.DataFrame:
    days = candles["trade_date"]
    return rolling_statistics(
        candles,
        days.min(),
        days.max(),
        rsi_period=rsi_period,
        std_window=std_window,
        lookback_days=LOOKBACK_DAYS,
    ).set_index(["coin_id", "trade_date"])


def test_rolling_statistics_match_talib_on_gaps_flat_runs_and_tiny_prices():
    candles = default_market().candles()
    expected = rolling_reference(candles, pd.DatetimeIndex(candles["trade_date"].unique()))
    assert_rolling_matches(_compute_rolling(candles), expected)


def test_rsi_window_spans_300_calendar_days_across_long_histories():
    rng = np.random.default_rng(7)
    days = pd.date_range("2015-01-01", periods=900, freq="D")
    kept = np.sort(rng.choice(len(days), 700, replace=False))  # irregular gaps
    candles = pd.DataFrame(
        {
            "coin_id": 1,
            "ticker": "X",
            "trade_date": days[kept],
            "close": 100 * np.exp(np.cumsum(rng.normal(0, 0.05, len(kept)))),
        }
    )
    expected = rolling_reference(candles, pd.DatetimeIndex(candles["trade_date"]), 9, 21)
    assert_rolling_matches(_compute_rolling(candles, rsi_period=9, std_window=21), expected)


def _walk_with_a_gap(seed: int, days: int, gap: tuple[int, int]) -> pd.DataFrame:
    """One coin's daily closes from 2016-01-01, a random walk, without the days in ``gap``."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2016-01-01", periods=days, freq="D")
    kept = np.r_[0 : gap[0], gap[1] : days]
    return pd.DataFrame(
        {
            "coin_id": 1,
            "ticker": "X",
            "trade_date": dates[kept],
            "close": 20 * np.exp(np.cumsum(rng.normal(0, 0.05, len(kept)))),
        }
    )


def test_rsi_matches_talib_on_young_full_and_gap_spanning_windows_of_one_history():
    """A coin's first 300 days (windows from its first close), full 300-change windows and
    windows across a 10-day gap are each computed their own way; all must equal TA-Lib."""
    candles = _walk_with_a_gap(seed=11, days=1000, gap=(600, 610))
    expected = rolling_reference(candles, pd.DatetimeIndex(candles["trade_date"]))
    assert_rolling_matches(_compute_rolling(candles), expected)


def test_a_day_computed_alone_equals_the_same_day_of_a_long_run_to_the_last_bit():
    """A single-day run loads only the day's lookback; its RSI and std dev must be the bytes a
    backfill stored, for full windows, young coins' windows and windows across a gap."""
    candles = _walk_with_a_gap(seed=5, days=800, gap=(500, 507))
    whole = _compute_rolling(candles)
    for day in pd.DatetimeIndex(candles["trade_date"])[[20, 150, 299, 300, 301, 499, 500, 650]]:
        window = candles[candles["trade_date"] >= day - pd.Timedelta(days=LOOKBACK_DAYS)]
        window = window[window["trade_date"] <= day]
        alone = rolling_statistics(
            window, day, day, rsi_period=14, std_window=14, lookback_days=LOOKBACK_DAYS
        ).set_index(["coin_id", "trade_date"])
        values = [alone.loc[(1, day), c] for c in ("rsi", "std_dev")]
        expected = [whole.loc[(1, day), c] for c in ("rsi", "std_dev")]
        assert np.array(values).tobytes() == np.array(expected).tobytes(), (day, values, expected)


def test_rsi_is_null_before_fifteen_closes_and_on_all_flat_windows():
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-02-20"))
    closes = np.full(len(days), 5.0)
    closes[30:] = 6.0 + np.arange(len(days) - 30)  # the first move is on day 30
    rsi = wilder_rsi(days, closes, np.arange(len(days)), 14, LOOKBACK_DAYS)
    assert np.isnan(rsi[:30]).all()  # first 14 have too few closes, then all flat
    assert rsi[30] == pytest.approx(100.0)


def test_rsi_of_a_tiny_move_decayed_over_300_flat_days_matches_talib_not_zero():
    days = pd.date_range("2020-01-01", periods=320, freq="D")
    closes = np.full(len(days), 2.0)
    closes[0] = 2.0 - 1e-6  # one tiny move, then 319 flat closes
    candles = pd.DataFrame({"coin_id": 1, "ticker": "X", "trade_date": days, "close": closes})
    expected = rolling_reference(candles, days)
    assert_rolling_matches(_compute_rolling(candles), expected)
    assert expected["rsi"].iloc[299] == 100.0  # the move is still in the window
    assert np.isnan(expected["rsi"].iloc[-1])  # the window has become all flat


def test_std_needs_a_full_window_of_stored_closes():
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-21"))
    closes = np.arange(20, dtype=float)
    std = trailing_std(days, closes, np.arange(20), 14, LOOKBACK_DAYS)
    assert np.isnan(std[:13]).all()
    assert std[13] == pytest.approx(np.std(np.arange(14.0)))


def test_period_returns_match_calendar_shifted_closes_and_skip_missing_days():
    candles = default_market().candles()
    days = pd.DatetimeIndex(candles["trade_date"].unique())
    actual = period_returns(candles, days.min(), days.max(), 5).set_index(["coin_id", "trade_date"])
    expected = returns_reference(candles, days, 5)
    assert list(actual.index) == list(expected.index)
    np.testing.assert_allclose(actual["period_return"], expected["period_return"], rtol=1e-15)
    gap_day = pd.Timestamp("2020-02-10") + pd.Timedelta(days=5)  # ALPHA has no 2020-02-10..12
    assert (101, gap_day) not in actual.index


def test_a_zero_earlier_close_has_no_return():
    candles = pd.DataFrame(
        {
            "coin_id": 1,
            "ticker": "X",
            "trade_date": pd.date_range("2020-01-01", periods=4, freq="D"),
            "close": [0.0, 0.0, 2.0, 0.0],
        }
    )
    returns = period_returns(candles, candles["trade_date"].min(), candles["trade_date"].max(), 1)
    assert list(returns["trade_date"].dt.day) == [4]
    assert list(returns["period_return"]) == [-1.0]
