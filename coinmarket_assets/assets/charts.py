"""A daily chart of the ranked coins: close and RSI over the last 90 days, under them the market
index's level and Bitcoin's dominance, as a PNG."""

import base64
import os
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import (
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)

from coinmarket_assets.frames import Frame
from coinmarket_assets.partitions import DAILY_BACKFILL_POLICY, daily_partitions
from coinmarket_assets.resources import PipelineSettingsResource
from coinmarket_assets.retries import TRANSIENT_ERROR_RETRIES, fail_without_retry_unless_transient
from coinmarket_assets.settings import CHART_DAYS
from coinmarket_assets.storage.database import connect, retry_on_lost_connection
from coinmarket_assets.storage.tables import TABLES

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

    from coinmarket_assets.compute.charts import MarketContext


def _lookback(asset: str) -> AssetDep:
    """The upstream days [D - 89, D] of each partition D."""
    return AssetDep(
        asset,
        partition_mapping=TimeWindowPartitionMapping(
            start_offset=-(CHART_DAYS - 1), allow_nonexistent_upstream_partitions=True
        ),
    )


# The level of each day is the view's running product from the first stored index day, so the
# window is cut after the product is taken (PostgreSQL does not push the filter below it).
_CONTEXT_QUERIES = {
    "market_index_levels": "SELECT trade_date, level FROM market_index_levels "
    "WHERE trade_date >= %s AND trade_date < %s ORDER BY trade_date",
    "global_metrics": "SELECT trade_date, btc_dominance FROM global_metrics "
    "WHERE trade_date >= %s AND trade_date < %s ORDER BY trade_date",
}


@retry_on_lost_connection
def chart_inputs(day: date) -> dict[str, Frame]:
    """The stored rows the chart of ``day`` needs: 90 days of candles, statistics, index levels
    and Bitcoin dominance, and the day's rankings. Read here rather than as inputs, which would
    load the lookback of every day of a ranged run although only its newest day is drawn."""
    from coinmarket_assets.storage.table_io import read_rows

    first, end = day - timedelta(days=CHART_DAYS - 1), day + timedelta(days=1)
    with connect() as conn:
        return {
            "historical_trade_data": read_rows(conn, TABLES["historical_trade_data"], first, end),
            "historical_rolling": read_rows(conn, TABLES["historical_rolling"], first, end),
            "top_ranking": read_rows(conn, TABLES["top_ranking"], day, end),
            "bottom_ranking": read_rows(conn, TABLES["bottom_ranking"], day, end),
            **{
                name: _daily_series(conn, query, first, end)
                for name, query in _CONTEXT_QUERIES.items()
            },
        }


def _daily_series(conn: "psycopg.Connection", query: str, first: date, end: date) -> Frame:
    """A (trade_date, value) query's rows as a frame of datetime64 days and float values."""
    import pandas as pd

    cursor = conn.execute(query, [first, end])
    names = [column.name for column in cursor.description]
    frame = pd.DataFrame(cursor.fetchall(), columns=names)
    return frame.astype({names[0]: "datetime64[ns]", names[1]: "float64"})


def _market_on(day: "pd.Timestamp", market: "MarketContext") -> dict[str, object]:
    """The day's index level and Bitcoin dominance, those stored."""
    found: dict[str, object] = {}
    for frame, column, name in [
        (market.index_levels, "level", "index_level"),
        (market.dominance, "btc_dominance", "btc_dominance"),
    ]:
        values = frame.loc[frame["trade_date"] == day, column].dropna()
        if len(values):
            found[name] = float(values.iloc[0])
    return found


def chart_path(day: str) -> Path:
    """Where the day's chart is stored: ``$COINMARKET_HOME/charts/<day>.png``."""
    from coinmarket_assets.storage.embedded import coinmarket_home

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
        _lookback("market_index"),
        _lookback("global_metrics"),
    ],
)
@fail_without_retry_unless_transient
def ranked_coin_chart(
    context: AssetExecutionContext, pipeline_settings: PipelineSettingsResource
) -> MaterializeResult:
    """A PNG of the day's top and bottom ranked coins over the last 90 days: close relative to
    the window's first close (log scale) and RSI with its 30/70 bands; under them, over the same
    days, the market index's level (market_index_levels) and Bitcoin's dominance (global_metrics),
    each panel saying so when nothing is stored for it.

    Shown in the day's materialization and stored as $COINMARKET_HOME/charts/<day>.png. A run
    over a range of days renders only its newest day (a backfill would otherwise spend most of
    its time drawing); materialize an older day on its own to draw it.
    """
    import pandas as pd

    from coinmarket_assets.compute.charts import MarketContext, ranked_coins, render_chart

    day = context.partition_keys[-1]
    timestamp = pd.Timestamp(day)
    stored = chart_inputs(timestamp.date())
    coins = ranked_coins(stored["top_ranking"], stored["bottom_ranking"], timestamp)
    path = chart_path(day)
    if coins:
        return_days = pipeline_settings.settings.return_days
        candles, rolling = stored["historical_trade_data"], stored["historical_rolling"]
        market = MarketContext(stored["market_index_levels"], stored["global_metrics"])
        png = render_chart(timestamp, coins, candles, rolling, return_days, market)
        _store(path, png)
        encoded = base64.b64encode(png).decode("ascii")
        alt = f"Top and bottom coins on {day}"
        chart = {
            "chart": MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})"),
            "chart_file": MetadataValue.path(str(path)),
            "chart_bytes": len(png),
            "coins": ", ".join(f"{coin.ticker} ({coin.label})" for coin in coins),
            **_market_on(timestamp, market),
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
