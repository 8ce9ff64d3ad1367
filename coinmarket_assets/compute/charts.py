"""Drawing a day's ranked coins: close and RSI over the last 90 days, under them the market
index's level and Bitcoin's dominance over the same days, as a PNG."""

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from coinmarket_assets.settings import CHART_DAYS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_PX, HEIGHT_PX, DPI = 800, 720, 80
RSI_BANDS = (30, 70)
# The panels, top to bottom, and their shares of the height.
PANELS = ("price", "rsi", "index", "dominance")
HEIGHT_RATIOS = (3, 1.6, 1.3, 1.3)
NO_INDEX = "No market index stored for these days"
NO_DOMINANCE = "No global metrics (Bitcoin dominance) stored for these days"


@dataclass(frozen=True)
class MarketContext:
    """The market beside the coins: ``index_levels`` (trade_date, level) from the view
    market_index_levels and ``dominance`` (trade_date, btc_dominance) from global_metrics; either
    may be empty."""

    index_levels: pd.DataFrame
    dominance: pd.DataFrame


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
    market: MarketContext,
) -> bytes:
    """The chart of ``draw_chart`` as a PNG."""
    return _palette_png(draw_chart(day, coins, candles, rolling, return_days, market))


def draw_chart(
    day: pd.Timestamp,
    coins: Sequence[RankedCoin],
    candles: pd.DataFrame,
    rolling: pd.DataFrame,
    return_days: int,
    market: MarketContext,
) -> "Figure":
    """Each coin's close relative to its first close of the 90 days (log scale, so that coins of
    any price compare) above its RSI (0-100, 30/70 bands), then the index level and Bitcoin's
    dominance; a panel without stored days says so."""
    # Imported here: matplotlib costs a second at import, paid only when a chart is drawn.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    first = day - pd.Timedelta(days=CHART_DAYS - 1)
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = dict(
        zip(PANELS, figure.subplots(4, 1, sharex=True, height_ratios=HEIGHT_RATIOS), strict=True)
    )
    _draw_coins(axes["price"], axes["rsi"], coins, candles, rolling, (first, day))
    axes["price"].set_title(
        f"{day:%Y-%m-%d}: top and bottom coins by {return_days}-day return, last {CHART_DAYS} days"
    )
    _draw_series(axes["index"], market.index_levels, "level", (first, day), NO_INDEX)
    axes["index"].set_ylabel("index level")
    _draw_series(
        axes["dominance"], market.dominance, "btc_dominance", (first, day), NO_DOMINANCE, "%"
    )
    axes["dominance"].set_ylabel("BTC dominance")
    axes["dominance"].yaxis.set_major_formatter("{x:.4g}%")
    axes["dominance"].set_xlim(first, day)
    locator = AutoDateLocator()
    axes["dominance"].xaxis.set_major_locator(locator)
    axes["dominance"].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    for panel in axes.values():
        panel.grid(alpha=0.3)
    figure.text(0.005, 0.005, "Data: CoinMarketCap", ha="left", va="bottom", fontsize="x-small")
    return figure


def _draw_coins(
    price_axes: "Axes",
    rsi_axes: "Axes",
    coins: Sequence[RankedCoin],
    candles: pd.DataFrame,
    rolling: pd.DataFrame,
    days: tuple[pd.Timestamp, pd.Timestamp],
) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    for n, coin in enumerate(coins):
        style = {"color": f"C{n % 10}", "linestyle": "-" if coin.top else "--", "linewidth": 1.4}
        closes = _window(candles, coin.coin_id, *days)
        if len(closes):
            relative = closes["close"] / closes["close"].iloc[0]
            last_close = closes["close"].iloc[-1]
            label = f"{coin.ticker} ({coin.label}) {last_close:,.6g}"
            price_axes.plot(closes["trade_date"], relative, label=label, **style)
        rsi = _window(rolling, coin.coin_id, *days).dropna(subset=["rsi"])
        rsi_axes.plot(rsi["trade_date"], rsi["rsi"], **style)
    price_axes.set_yscale("log")
    price_axes.yaxis.set_major_locator(FixedLocator(_change_ticks(*price_axes.get_ylim())))
    price_axes.yaxis.set_minor_locator(NullLocator())
    price_axes.yaxis.set_major_formatter(FuncFormatter(lambda ratio, _: f"{ratio - 1:+.0%}"))
    price_axes.set_ylabel("close vs. first in window (log)")
    price_axes.legend(loc="upper left", fontsize="small", ncols=2)
    for band in RSI_BANDS:
        rsi_axes.axhline(band, color="grey", linestyle=":", linewidth=1)
    rsi_axes.set_ylim(0, 100)
    rsi_axes.set_ylabel("RSI")


def _draw_series(
    axes: "Axes",
    frame: pd.DataFrame,
    column: str,
    days: tuple[pd.Timestamp, pd.Timestamp],
    empty_note: str,
    unit: str = "",
) -> None:
    """One value a day over ``days``, broken where a day has none (so a missing day is not
    drawn as a straight line across it), labelled with the newest value."""
    inside = frame[frame["trade_date"].between(*days)].dropna(subset=[column])
    if inside.empty:
        axes.text(0.5, 0.5, empty_note, transform=axes.transAxes, ha="center", va="center")
        axes.set_yticks([])
        return
    daily = inside.set_index("trade_date")[column].reindex(pd.date_range(*days, freq="D"))
    newest = inside.sort_values("trade_date").iloc[-1]
    label = f"{newest[column]:,.6g}{unit} on {newest['trade_date']:%Y-%m-%d}"
    # Markers, so that a day alone between missing days still shows.
    style = {"color": "black", "linewidth": 1.2, "marker": "o", "markersize": 2}
    axes.plot(daily.index, daily.to_numpy(), label=label, **style)
    axes.legend(loc="best", fontsize="small")  # a small panel: keep clear of the line


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
