"""Daily top and bottom coins by period return."""

from collections.abc import Iterator
from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    MetadataValue,
    Output,
)

from coinmarket_assets import checks
from coinmarket_assets.frames import Frame
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import PipelineSettingsResource
from coinmarket_assets.settings import RSI_LOOKBACK_DAYS, Settings
from coinmarket_assets.storage.database import connect, retry_on_lost_connection
from coinmarket_assets.storage.io_manager import TableBatches

# Each of a run's newest days gets its own table in its materialization. Dagster's per-partition
# metadata costs time quadratic in the run's days, so long backfills show only the newest ones.
TABLE_DAYS = 31


def _ranking_asset(name: str, *, highest_first: bool, description: str) -> AssetsDefinition:
    @daily_table_asset(
        name=name,
        description=description,
        group_name="rankings",
        ins={"period_returns": AssetIn(metadata={"batched": True})},
        check_specs=checks.specs(name),
    )
    def ranking(
        context: AssetExecutionContext,
        pipeline_settings: PipelineSettingsResource,
        period_returns: TableBatches,
    ) -> Iterator[Output[Frame] | AssetCheckResult]:
        from coinmarket_assets.compute.rankings import ranking_markdown

        settings = pipeline_settings.settings
        ranked, left_out = _rank_by_days(period_returns, settings, highest_first=highest_first)
        title = f"{_which(highest_first).capitalize()} {settings.return_days}-day returns"
        for day in context.partition_keys[-TABLE_DAYS:]:
            table = ranking_markdown(ranked, day, title, settings.return_days, left_out)
            context.add_asset_metadata({"ranking": MetadataValue.md(table)}, partition_key=day)
        metadata = {"settings": MetadataValue.json(settings.as_metadata())}
        if left_out is not None:
            context.log.info(
                "event=tags_excluded tags=%s coin_days_left_out=%d",
                ",".join(settings.exclude_tags),
                len(left_out),
            )
            metadata["left_out_for_tags"] = MetadataValue.int(len(left_out))
        yield Output(ranked, metadata=metadata)
        # The IO manager committed the run's days when the output was yielded.
        first_day, last_day = run_days(context)
        yield from checks.evaluate_stored(
            checks.RunScope(
                name,
                first_day,
                last_day,
                rank_size=settings.rank_size,
                highest_first=highest_first,
                top_n=settings.point_in_time_top,
                exclude_tags=settings.exclude_tags,
            )
        )

    return ranking


def _rank_by_days(
    returns: TableBatches, settings: Settings, *, highest_first: bool
) -> tuple[Frame, Frame | None]:
    """Each day's ranking, reading the returns a batch of whole days at a time: about as many
    rows per batch as a statistics step holds (COINMARKET_BATCH_COINS coins' lookback). With
    ``top:N`` only each day's members (from the stored listing) are ranked; with
    COINMARKET_EXCLUDE_TAGS, coins carrying one of the tags that day are left out before the
    cut. Also the coins left out (None without excluded tags)."""
    import pandas as pd

    from coinmarket_assets.compute.rankings import rank_eligible, rank_returns
    from coinmarket_assets.storage.tags import carrying_stored

    top_n = settings.point_in_time_top
    coins = top_n if top_n is not None else len(returns.coin_ids())
    days = max(1, settings.batch_coins * (RSI_LOOKBACK_DAYS + 1) // max(coins, 1))
    tags = settings.exclude_tags
    ranked, left_out = [], []
    for first_day, last_day, batch in returns.by_days(days):
        if top_n is not None:
            batch = batch.merge(
                _members(first_day, last_day, top_n)[["trade_date", "coin_id"]],
                on=["trade_date", "coin_id"],
            )
        if not tags:
            ranked.append(rank_returns(batch, settings.rank_size, highest_first=highest_first))
            continue
        eligible, out = rank_eligible(
            batch,
            settings.rank_size,
            highest_first=highest_first,
            carrying=lambda pairs: carrying_stored(pairs, tags),
        )
        ranked.append(eligible)
        left_out.append(out)
    stored = pd.concat([r for r in ranked if len(r)] or ranked[:1], ignore_index=True)
    if not tags:
        return stored, None
    return stored, pd.concat([o for o in left_out if len(o)] or left_out[:1], ignore_index=True)


@retry_on_lost_connection
def _members(first_day: date, last_day: date, top_n: int) -> Frame:
    """The (trade_date, coin_id) of each day's members: the stored listing's rows read by COPY
    (as ``universe.members`` selects them, without building a Python row per member)."""
    from coinmarket_assets.storage.table_io import read_rows
    from coinmarket_assets.storage.tables import TABLES

    columns = ["trade_date", "coin_id", "rank"]
    with connect() as conn:
        listed = read_rows(
            conn, TABLES["historical_listings"], first_day, last_day + timedelta(days=1), columns
        )
    return listed[listed["rank"] <= top_n]


def _which(highest_first: bool) -> str:
    return "highest" if highest_first else "lowest"


top_ranking = _ranking_asset(
    "top_ranking",
    highest_first=True,
    description="Each day's coins with the highest period return (rank 1 = highest), "
    "among every coin with a stored return (with top:N, among that day's members; with "
    "COINMARKET_EXCLUDE_TAGS, without the coins carrying one of those tags that day); ties by "
    "ticker, then coin id.",
)
bottom_ranking = _ranking_asset(
    "bottom_ranking",
    highest_first=False,
    description="Each day's coins with the lowest period return (rank 1 = lowest), "
    "among every coin with a stored return (with top:N, among that day's members; with "
    "COINMARKET_EXCLUDE_TAGS, without the coins carrying one of those tags that day); ties by "
    "ticker, then coin id.",
)
