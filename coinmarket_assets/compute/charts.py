"""Drawing a day's ranked coins: close and RSI over the last 90 days, as a PNG."""

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from coinmarket_assets.settings import CHART_DAYS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH_PX, HEIGHT_PX, DPI = 800, 500, 80
RSI_BANDS = (30, 70)


@dataclass(frozen=True)
class RankedCoin:
    coin_id: int
    ticker: str
    label: str  # e.g. "top 1", "bottom 2", or "top 3, bottom 1" in a small universe
    top: bool


def ranked_coins(top: pd.DataFrame, bottom: pd.DataFrame, day: pd.Timestamp) -> list[RankedCoin]:
    """The day's top coins by rank, then its bottom coins; a coin in both is listed once."""
    coins: dict[int, RankedCoin] = {}
    for frame, side in ((top, "top"), (bottom, "bottom")):
        for row in frame[frame["trade_date"] == day].sort_values("rank").itertuples():
            label = f"{side} {row.rank}"
            known = coins.get(row.coin_id)
            coins[row.coin_id] = (
                RankedCoin(row.coin_id, row.ticker, f"{known.label}, {label}", known.top)
                if known
                else RankedCoin(row.coin_id, row.ticker, label, side == "top")
            )
    return list(coins.values())


def render_chart(
    day: pd.Timestamp,
    coins: Sequence[RankedCoin],
    candles: pd.DataFrame,
    rolling: pd.DataFrame,
    return_days: int,
) -> bytes:
    """A PNG: each coin's close relative to its first close of the 90 days (log scale, so that
    coins of any price compare) above its RSI (0-100, 30/70 bands)."""
    # Imported here: matplotlib costs a second at import, paid only when a chart is drawn.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    first = day - pd.Timedelta(days=CHART_DAYS - 1)
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    price_axes, rsi_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    for n, coin in enumerate(coins):
        style = {"color": f"C{n % 10}", "linestyle": "-" if coin.top else "--", "linewidth": 1.4}
        closes = _window(candles, coin.coin_id, first, day)
        if len(closes):
            relative = closes["close"] / closes["close"].iloc[0]
            last_close = closes["close"].iloc[-1]
            label = f"{coin.ticker} ({coin.label}) {last_close:,.6g}"
            price_axes.plot(closes["trade_date"], relative, label=label, **style)
        rsi = _window(rolling, coin.coin_id, first, day).dropna(subset=["rsi"])
        rsi_axes.plot(rsi["trade_date"], rsi["rsi"], **style)
    price_axes.set_yscale("log")
    price_axes.yaxis.set_major_locator(FixedLocator(_change_ticks(*price_axes.get_ylim())))
    price_axes.yaxis.set_minor_locator(NullLocator())
    price_axes.yaxis.set_major_formatter(FuncFormatter(lambda ratio, _: f"{ratio - 1:+.0%}"))
    price_axes.set_ylabel("close vs. first in window (log)")
    price_axes.set_title(
        f"{day:%Y-%m-%d}: top and bottom coins by {return_days}-day return, last {CHART_DAYS} days"
    )
    price_axes.legend(loc="upper left", fontsize="small", ncols=2)
    price_axes.grid(alpha=0.3)
    for band in RSI_BANDS:
        rsi_axes.axhline(band, color="grey", linestyle=":", linewidth=1)
    rsi_axes.set_ylim(0, 100)
    rsi_axes.set_ylabel("RSI")
    rsi_axes.set_xlim(first, day)
    locator = AutoDateLocator()
    rsi_axes.xaxis.set_major_locator(locator)
    rsi_axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    rsi_axes.grid(alpha=0.3)
    figure.text(0.005, 0.005, "Data: CoinMarketCap", ha="left", va="bottom", fontsize="x-small")
    return _palette_png(figure)


# Round changes for the log-scale price axis, as ratios to the first close.
CHANGE_TICKS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2, 3, 5, 10, 20)
MIN_TICK_GAP = 0.07  # of the axis height, so that labels never overlap


def _change_ticks(low: float, high: float) -> list[float]:
    """Round ratios within [low, high], picked outwards from 1 and thinned to stay readable."""
    span = math.log(high / low) if high > low > 0 else 1.0
    inside = [tick for tick in CHANGE_TICKS if low <= tick <= high]
    picked: list[float] = []
    for side in ([t for t in inside if t >= 1], [t for t in reversed(inside) if t < 1]):
        for tick in side:
            if all(abs(math.log(tick / p)) >= MIN_TICK_GAP * span for p in picked):
                picked.append(tick)
    return sorted(picked)


def _palette_png(figure: "Figure") -> bytes:
    """The figure as a PNG of 64 colours: a fifth of the size of matplotlib's RGBA PNG."""
    from PIL import Image

    canvas = figure.canvas
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
    palette = image.convert("RGB").quantize(colors=64, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _window(
    frame: pd.DataFrame, coin_id: int, first: pd.Timestamp, last: pd.Timestamp
) -> pd.DataFrame:
    rows = frame[(frame["coin_id"] == coin_id) & frame["trade_date"].between(first, last)]
    return rows.sort_values("trade_date")
