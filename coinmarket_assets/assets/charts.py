"""A daily chart of the ranked coins: close and RSI over the last 90 days, as a PNG."""

import base64
import io
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)

from coinmarket_assets.partitions import DAILY_BACKFILL_POLICY, daily_partitions
from coinmarket_assets.resources import PipelineSettingsResource
from coinmarket_assets.retries import TRANSIENT_ERROR_RETRIES, fail_without_retry_unless_transient
from coinmarket_assets.storage.database import connect, retry_on_lost_connection
from coinmarket_assets.storage.embedded import coinmarket_home
from coinmarket_assets.storage.table_io import read_rows
from coinmarket_assets.storage.tables import TABLES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CHART_DAYS = 90
WIDTH_PX, HEIGHT_PX, DPI = 800, 500, 80
RSI_BANDS = (30, 70)


def _lookback(asset: str) -> AssetDep:
    """The upstream days [D - 89, D] of each partition D."""
    return AssetDep(
        asset,
        partition_mapping=TimeWindowPartitionMapping(
            start_offset=-(CHART_DAYS - 1), allow_nonexistent_upstream_partitions=True
        ),
    )


@retry_on_lost_connection
def _chart_inputs(day: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The stored rows the chart of ``day`` needs: 90 days of candles and statistics, and the
    day's rankings. Read here rather than as inputs, which would load the lookback of every day
    of a ranged run although only its newest day is drawn."""
    first, end = (
        (day - pd.Timedelta(days=CHART_DAYS - 1)).date(),
        (day + pd.Timedelta(days=1)).date(),
    )
    with connect() as conn:
        return {
            "historical_trade_data": read_rows(conn, TABLES["historical_trade_data"], first, end),
            "historical_rolling": read_rows(conn, TABLES["historical_rolling"], first, end),
            "top_ranking": read_rows(conn, TABLES["top_ranking"], day.date(), end),
            "bottom_ranking": read_rows(conn, TABLES["bottom_ranking"], day.date(), end),
        }


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
    # Imported here: matplotlib costs a second at import, which every run and the UI would pay.
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


def chart_path(day: str) -> Path:
    """Where the day's chart is stored: ``$COINMARKET_HOME/charts/<day>.png``."""
    return coinmarket_home() / "charts" / f"{day}.png"


def _store(path: Path, png: bytes) -> None:
    # Written aside (under a name of its own, in case two runs draw the same day) and renamed,
    # so that a reader never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".partial", delete=False) as partial:
        partial.write(png)
    os.replace(partial.name, path)


@asset(
    partitions_def=daily_partitions,
    # The same policy as every partitioned asset: a mix falls back to one run per day.
    backfill_policy=DAILY_BACKFILL_POLICY,
    retry_policy=TRANSIENT_ERROR_RETRIES,
    group_name="charts",
    kinds={"matplotlib"},
    deps=[
        _lookback("historical_trade_data"),
        _lookback("historical_rolling"),
        "top_ranking",
        "bottom_ranking",
    ],
)
@fail_without_retry_unless_transient
def ranked_coin_chart(
    context: AssetExecutionContext, pipeline_settings: PipelineSettingsResource
) -> MaterializeResult:
    """A PNG of the day's top and bottom ranked coins over the last 90 days: close relative to
    the window's first close (log scale) and RSI with its 30/70 bands.

    Shown in the day's materialization and stored as $COINMARKET_HOME/charts/<day>.png. A run
    over a range of days renders only its newest day (a backfill would otherwise spend most of
    its time drawing); materialize an older day on its own to draw it.
    """
    day = context.partition_keys[-1]
    timestamp = pd.Timestamp(day)
    stored = _chart_inputs(timestamp)
    coins = ranked_coins(stored["top_ranking"], stored["bottom_ranking"], timestamp)
    path = chart_path(day)
    if coins:
        return_days = pipeline_settings.settings.return_days
        candles, rolling = stored["historical_trade_data"], stored["historical_rolling"]
        png = render_chart(timestamp, coins, candles, rolling, return_days)
        _store(path, png)
        encoded = base64.b64encode(png).decode("ascii")
        alt = f"Top and bottom coins on {day}"
        chart = {
            "chart": MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})"),
            "chart_file": MetadataValue.path(str(path)),
            "chart_bytes": len(png),
            "coins": ", ".join(f"{coin.ticker} ({coin.label})" for coin in coins),
        }
    else:
        path.unlink(missing_ok=True)  # a stale chart of rankings that no longer exist
        chart = {"chart": MetadataValue.md(f"_No coin is ranked on {day}: nothing to draw._")}
    if len(context.partition_keys) > 1:
        # The run's other days get a note, not copies of the image; Dagster gives a partition's
        # own metadata (the newest day's chart, below) precedence over the run-wide entry.
        note = f"_This run covered several days and drew only its newest, {day}._"
        context.add_asset_metadata({"chart": MetadataValue.md(note)})
    context.add_asset_metadata(chart, partition_key=day)
    return MaterializeResult(metadata={"chart_day": day})
