"""The chart's market panels, drawn from frames (no database): the index level and Bitcoin's
dominance over the chart's 90 days, each day at its value, a gap where a day is missing, and a
note where nothing is stored."""

import math
import struct
from datetime import date, timedelta

import pandas as pd
import pytest

from coinmarket_assets.compute.charts import (
    NO_DOMINANCE,
    NO_INDEX,
    MarketContext,
    RankedCoin,
    draw_chart,
    render_chart,
)

DAY = date(2021, 5, 20)
FIRST = DAY - timedelta(days=89)
COIN = RankedCoin(coin_id=1, ticker="BTC", label="top 1", top=True)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _coin_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    days = pd.to_datetime(_days(FIRST, DAY))
    candles = pd.DataFrame({"coin_id": 1, "trade_date": days, "close": range(100, 190)})
    rolling = pd.DataFrame({"coin_id": 1, "trade_date": days, "rsi": 50.0})
    return candles, rolling


def _series(values: dict[date, float], column: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"trade_date": pd.to_datetime(list(values)), column: list(values.values())},
        columns=["trade_date", column],
    ).astype({"trade_date": "datetime64[ns]", column: "float64"})


def _draw(market: MarketContext):
    candles, rolling = _coin_frames()
    return draw_chart(pd.Timestamp(DAY), [COIN], candles, rolling, 5, market)


def _plotted(axes) -> dict[date, float]:
    """The panel's one line, day by day (NaN where it is broken)."""
    (line,) = axes.get_lines()
    days = pd.to_datetime(line.get_xdata()).date
    return dict(zip(days, (float(v) for v in line.get_ydata()), strict=True))


def _expected(stored: dict[date, float]) -> dict[date, float]:
    """Every day of the chart's window: its stored value, NaN when it has none."""
    return {day: stored.get(day, math.nan) for day in _days(FIRST, DAY)}


def _same(plotted: dict[date, float], expected: dict[date, float]) -> bool:
    return list(plotted) == list(expected) and all(
        (math.isnan(a) and math.isnan(b)) or a == b
        for a, b in zip(plotted.values(), expected.values(), strict=True)
    )


def test_the_market_panels_draw_each_day_of_the_window_at_its_value_with_gaps_where_missing():
    # Levels from before the window (not drawn), a missing day inside it, and a day after it.
    levels = {day: 1000.0 + n * 3.5 for n, day in enumerate(_days(FIRST - timedelta(days=5), DAY))}
    del levels[FIRST + timedelta(days=40)]
    levels[DAY + timedelta(days=1)] = 1.0
    dominance = {day: 40.0 + n / 10 for n, day in enumerate(_days(FIRST + timedelta(days=30), DAY))}
    dominance[DAY - timedelta(days=2)] = math.nan  # a stored day without the value
    market = MarketContext(_series(levels, "level"), _series(dominance, "btc_dominance"))

    _, _, index_axes, dominance_axes = _draw(market).axes

    in_window = {d: v for d, v in levels.items() if FIRST <= d <= DAY}
    assert _same(_plotted(index_axes), _expected(in_window))
    assert _same(_plotted(dominance_axes), _expected(dominance))
    assert index_axes.get_legend().get_texts()[0].get_text() == f"{levels[DAY]:,.6g} on {DAY}"
    newest_dominance = dominance[DAY]
    assert (
        dominance_axes.get_legend().get_texts()[0].get_text() == f"{newest_dominance:.6g}% on {DAY}"
    )
    assert not index_axes.texts and not dominance_axes.texts


@pytest.mark.parametrize(
    ("index_days", "dominance_days", "notes"),
    [
        (0, 0, [NO_INDEX, NO_DOMINANCE]),
        (90, 0, [NO_DOMINANCE]),
        (0, 90, [NO_INDEX]),
        # Rows stored only before the window: nothing of these days to draw.
        (-10, 0, [NO_INDEX, NO_DOMINANCE]),
    ],
)
def test_a_market_panel_without_stored_days_says_so_and_the_chart_still_draws(
    index_days: int, dominance_days: int, notes: list[str]
):
    def stored(count: int, column: str) -> pd.DataFrame:
        last = DAY if count >= 0 else FIRST - timedelta(days=1)
        days = _days(last - timedelta(days=abs(count) - 1), last) if count else []
        return _series(dict.fromkeys(days, 50.0), column)

    market = MarketContext(stored(index_days, "level"), stored(dominance_days, "btc_dominance"))
    _, _, index_axes, dominance_axes = _draw(market).axes
    drawn_notes = [text.get_text() for axes in (index_axes, dominance_axes) for text in axes.texts]
    assert drawn_notes == notes
    for axes, note in [(index_axes, NO_INDEX), (dominance_axes, NO_DOMINANCE)]:
        assert (len(axes.get_lines()) == 0) == (note in notes)

    candles, rolling = _coin_frames()
    png = render_chart(pd.Timestamp(DAY), [COIN], candles, rolling, 5, market)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", png[16:24]) == (800, 720)
