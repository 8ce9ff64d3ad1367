"""The point-in-time market index: each day's return of the top coins of the day before."""

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from dagster import (
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
)

from coinmarket_assets.frames import Frame
from coinmarket_assets.partitions import daily_table_asset, days_between, run_days
from coinmarket_assets.resources import PipelineSettingsResource
from coinmarket_assets.settings import RSI_LOOKBACK_DAYS, Settings
from coinmarket_assets.storage.io_manager import TableBatches

# Days without a member are named in the metadata, up to this many.
DAYS_SHOWN = 20

# The listing rows of the given days ranked down to each day's limit, best rank first.
_LISTED = """
    SELECT l.trade_date, l.coin_id, l.rank, l.market_cap
    FROM unnest(%(days)s::date[], %(limits)s::integer[]) AS d (trade_date, max_rank)
    JOIN historical_listings l ON l.trade_date = d.trade_date AND l.rank <= d.max_rank
    ORDER BY l.trade_date, l.rank, l.coin_id
"""
# The stored closes of the given (coin, day) pairs, once each: a coin in the cut of two
# consecutive days asks twice for the close of the day between them.
_CLOSES = """
    SELECT h.coin_id, h.trade_date, h.close
    FROM (
        SELECT DISTINCT * FROM unnest(%(coins)s::integer[], %(days)s::date[])
    ) AS p (coin_id, trade_date)
    JOIN historical_trade_data h ON h.coin_id = p.coin_id AND h.trade_date = p.trade_date
    ORDER BY h.coin_id, h.trade_date
"""


def _day_before(*, through: int) -> TimeWindowPartitionMapping:
    """Partition D reads the upstream days D - 1 .. D + through."""
    return TimeWindowPartitionMapping(
        start_offset=-1, end_offset=through, allow_nonexistent_upstream_partitions=True
    )


@daily_table_asset(
    group_name="market_context",
    ins={
        # Read here by narrow queries, not whole days: only the listing's top rows and the
        # members' closes. The inputs give lineage, the windows and the step's lock.
        "historical_listings": AssetIn(
            partition_mapping=_day_before(through=-1), metadata={"batched": True}
        ),
        "historical_trade_data": AssetIn(
            partition_mapping=_day_before(through=0), metadata={"batched": True}
        ),
    },
)
def market_index(
    context: AssetExecutionContext,
    pipeline_settings: PipelineSettingsResource,
    historical_listings: TableBatches,
    historical_trade_data: TableBatches,
) -> Output[Frame]:
    """Each day's return of a capitalisation-weighted index of the day before's top coins:
    the coins ranked at most COINMARKET_INDEX_SIZE in the listing of D - 1 (leaving out those
    carrying a COINMARKET_EXCLUDE_TAGS tag) with a market cap there and closes on D - 1 and D,
    weighted by that market cap; index_return = sum of weight x (close(D) / close(D - 1) - 1).
    No row for a day without a member."""
    import pandas as pd

    from coinmarket_assets.compute.market_index import INDEX_COLUMNS

    settings = pipeline_settings.settings
    first_day, last_day = run_days(context)
    frames = [
        _index_of_days(days, settings, historical_listings, historical_trade_data)
        for days in _batches(first_day, last_day, _batch_days(settings))
    ]
    rows = pd.concat(frames, ignore_index=True)[INDEX_COLUMNS]
    metadata = _metadata(rows, first_day, last_day, settings)
    if metadata["days_without_members"]:
        context.log.info(
            f"event=market_index_empty_days days={metadata['days_without_members']}: no member "
            f"(no row stored) on {metadata['days_without_members_list'].text}"
        )
    return Output(rows, metadata=metadata)


def _batch_days(settings: Settings) -> int:
    """Days computed at once: about as many rows (a listing row and two closes per member and
    day) as a statistics step holds (COINMARKET_BATCH_COINS coins' lookback)."""
    budget = settings.batch_coins * (RSI_LOOKBACK_DAYS + 1)
    return max(1, budget // (3 * settings.index_size))


def _batches(first_day: date, last_day: date, size: int) -> list[list[date]]:
    days = days_between(first_day, last_day)
    return [days[start : start + size] for start in range(0, len(days), size)]


def _index_of_days(
    days: Sequence[date], settings: Settings, listings: TableBatches, candles: TableBatches
) -> Frame:
    """The index rows of ``days``, from the listings of the days before and the members' closes."""
    from coinmarket_assets.compute.market_index import index_cut, index_returns

    listing_days = [day - timedelta(days=1) for day in days]
    listing = _cut_candidates(listings, listing_days, settings)
    cut = index_cut(listing, settings.index_size)
    counted = cut[cut["market_cap"] > 0]  # the others are no members: no close is needed
    return index_returns(cut, _closes(candles, counted))


def _cut_candidates(
    listings: TableBatches, listing_days: Sequence[date], settings: Settings
) -> Frame:
    """The listing rows the cut needs: the top COINMARKET_INDEX_SIZE of each day, read deeper
    where coins carrying an excluded tag take places (``ranks_to_read``), with ``excluded``."""
    import pandas as pd

    from coinmarket_assets.compute.market_index import ranks_to_read

    limits = dict.fromkeys(listing_days, settings.index_size)
    found, pending = [], list(listing_days)
    while pending:
        rows = _listed(listings, {day: limits[day] for day in pending}, settings.exclude_tags)
        wanted = ranks_to_read(rows, settings.index_size)
        short = [day for day in pending if wanted.get(pd.Timestamp(day), 0) > limits[day]]
        found.append(rows[~rows["trade_date"].isin([pd.Timestamp(day) for day in short])])
        limits |= {day: int(wanted[pd.Timestamp(day)]) for day in short}
        pending = short
    return pd.concat(found, ignore_index=True)


def _listed(listings: TableBatches, limits: Mapping[date, int], tags: Sequence[str]) -> Frame:
    """The listing rows of the days ranked down to each day's limit, with ``excluded``."""
    import pandas as pd

    from coinmarket_assets.storage.tags import carrying_stored

    found = listings.query(_LISTED, {"days": list(limits), "limits": list(limits.values())})
    rows = pd.DataFrame(found, columns=["trade_date", "coin_id", "rank", "market_cap"])
    rows = rows.astype({"trade_date": "datetime64[us]", "coin_id": "int64", "rank": "int64"})
    rows = rows.astype({"market_cap": "float64"})
    rows["excluded"] = carrying_stored(rows[["trade_date", "coin_id"]], tags).to_numpy(bool)
    return rows


def _closes(candles: TableBatches, cut: Frame) -> Frame:
    """The stored closes of each ``cut`` coin (``coin_id``) on its listing day (``trade_date``)
    and the day after."""
    import pandas as pd

    coin_ids = [int(coin) for coin in cut["coin_id"]]
    days = [day.date() for day in cut["trade_date"]]
    after = [day + timedelta(days=1) for day in days]
    found = candles.query(_CLOSES, {"coins": coin_ids * 2, "days": days + after})
    closes = pd.DataFrame(found, columns=["coin_id", "trade_date", "close"])
    return closes.astype({"coin_id": "int64", "trade_date": "datetime64[us]", "close": "float64"})


def _metadata(
    rows: Frame, first_day: date, last_day: date, settings: Settings
) -> dict[str, object]:
    """The run's days without a member, and the settings of the index."""
    stored = {day.date() for day in rows["trade_date"]}
    days = days_between(first_day, last_day)
    empty = [day.isoformat() for day in days if day not in stored]
    shown = ", ".join(empty[:DAYS_SHOWN]) + (" ..." if len(empty) > DAYS_SHOWN else "")
    return {
        "days_indexed": len(stored),
        "days_without_members": len(empty),
        "days_without_members_list": MetadataValue.text(shown or "none"),
        "index_size": settings.index_size,
        "exclude_tags": ", ".join(settings.exclude_tags) or "none",
        "settings": MetadataValue.json(settings.as_metadata()),
    }
