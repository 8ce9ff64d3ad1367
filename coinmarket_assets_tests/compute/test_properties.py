"""Property-based checks (hypothesis) of the statistics on generated OHLCV histories: extreme
magnitudes, gaps and flat runs."""

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from coinmarket_assets.compute.indicators import period_returns, rolling_statistics
from coinmarket_assets.compute.rankings import rank_returns
from coinmarket_assets_tests.reference import LOOKBACK_DAYS, rsi_reference

magnitudes = st.floats(min_value=1e-8, max_value=1e12, allow_nan=False, allow_infinity=False)


@st.composite
def histories(draw: st.DrawFn, max_rows: int = 60) -> pd.DataFrame:
    """One coin's stored closes: random gaps between days, runs of repeated closes."""
    rows = draw(st.integers(min_value=1, max_value=max_rows))
    steps = draw(st.lists(st.integers(1, 40), min_size=rows, max_size=rows))
    base = draw(magnitudes)
    moves = draw(st.lists(st.floats(-0.5, 0.5), min_size=rows, max_size=rows))
    flat = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    closes = []
    for move, repeat in zip(moves, flat, strict=True):
        previous = closes[-1] if closes else base
        closes.append(previous if repeat and closes else previous * (1 + move) or base)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.cumsum(steps), unit="D")
    return pd.DataFrame({"coin_id": 1, "ticker": "X", "trade_date": days, "close": closes})


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(2, 20), st.integers(2, 20))
def test_rolling_statistics_follow_their_definitions(candles, rsi_period, std_window):
    days = candles["trade_date"]
    rolling = rolling_statistics(
        candles,
        days.min(),
        days.max(),
        rsi_period=rsi_period,
        std_window=std_window,
        lookback_days=LOOKBACK_DAYS,
    )
    assert len(rolling) == len(candles)  # one row per stored candle
    for row in rolling.itertuples():
        window = candles[
            (days >= row.trade_date - pd.Timedelta(days=LOOKBACK_DAYS)) & (days <= row.trade_date)
        ]["close"].to_numpy()
        expected_rsi = rsi_reference(window, rsi_period)
        if expected_rsi is None:
            assert math.isnan(row.rsi)
        else:
            assert 0.0 <= row.rsi <= 100.0
            assert math.isclose(row.rsi, expected_rsi, abs_tol=1e-6)
        if len(window) < std_window:
            assert math.isnan(row.std_dev)
        else:
            expected_std = float(np.std(window[-std_window:]))
            assert math.isclose(row.std_dev, expected_std, rel_tol=1e-9, abs_tol=1e-300)


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(1, 30))
def test_returns_are_consistent_with_the_closes(candles, days):
    returns = period_returns(
        candles, candles["trade_date"].min(), candles["trade_date"].max(), days
    )
    closes = dict(zip(candles["trade_date"], candles["close"], strict=True))
    expected_days = [
        day for day in closes if closes.get(day - pd.Timedelta(days=days)) not in (None, 0.0)
    ]
    assert list(returns["trade_date"]) == expected_days
    for row in returns.itertuples():
        earlier = closes[row.trade_date - pd.Timedelta(days=days)]
        assert row.period_return == closes[row.trade_date] / earlier - 1.0


returns_frames = st.lists(
    st.tuples(
        st.integers(0, 3),  # day
        st.integers(1, 8),  # coin id
        st.sampled_from(["AAA", "BBB", "CCC"]),
        st.floats(-1.0, 5.0, allow_nan=False),
    ),
    max_size=40,
    unique_by=lambda r: (r[0], r[1]),
)


@settings(max_examples=200, deadline=None)
@given(returns_frames, st.integers(1, 6), st.booleans())
def test_rankings_are_sorted_complete_and_drawn_from_the_returns(rows, size, highest_first):
    returns = pd.DataFrame(rows, columns=["day", "coin_id", "ticker", "period_return"])
    returns["trade_date"] = pd.Timestamp("2021-01-01") + pd.to_timedelta(returns["day"], unit="D")
    ranked = rank_returns(returns, size, highest_first=highest_first)
    for day, group in returns.groupby("trade_date"):
        day_ranks = ranked[ranked["trade_date"] == day]
        assert list(day_ranks["rank"]) == list(range(1, min(size, len(group)) + 1))
        values = list(day_ranks["period_return"])
        assert values == sorted(values, reverse=highest_first)
        chosen = set(day_ranks["coin_id"])
        left_out = group[~group["coin_id"].isin(chosen)]["period_return"]
        if len(left_out) and len(values):
            worst_chosen = values[-1]
            assert all(
                (v <= worst_chosen) if highest_first else (v >= worst_chosen) for v in left_out
            )
    assert set(ranked["trade_date"]) == set(returns["trade_date"])
