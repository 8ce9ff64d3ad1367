"""Daily top and bottom coins by period return."""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetsDefinition,
    MetadataValue,
    Output,
)

from coinmarket_assets import checks
from coinmarket_assets.frames import Frame
from coinmarket_assets.partitions import daily_table_asset, run_days
from coinmarket_assets.resources import PipelineSettingsResource

# Each of a run's newest days gets its own table in its materialization. Dagster's per-partition
# metadata costs time quadratic in the run's days, so long backfills show only the newest ones.
TABLE_DAYS = 31


def _ranking_asset(name: str, *, highest_first: bool, description: str) -> AssetsDefinition:
    @daily_table_asset(
        name=name,
        description=description,
        group_name="rankings",
        check_specs=checks.specs(name),
    )
    def ranking(
        context: AssetExecutionContext,
        pipeline_settings: PipelineSettingsResource,
        period_returns: Frame,
    ) -> Iterator[Output[Frame] | AssetCheckResult]:
        from coinmarket_assets.compute.rankings import rank_returns, ranking_markdown

        settings = pipeline_settings.settings
        ranked = rank_returns(period_returns, settings.rank_size, highest_first=highest_first)
        title = f"{_which(highest_first).capitalize()} {settings.return_days}-day returns"
        for day in context.partition_keys[-TABLE_DAYS:]:
            table = ranking_markdown(ranked, day, title, settings.return_days)
            context.add_asset_metadata({"ranking": MetadataValue.md(table)}, partition_key=day)
        yield Output(ranked, metadata={"settings": MetadataValue.json(settings.as_metadata())})
        # The IO manager committed the run's days when the output was yielded.
        first_day, last_day = run_days(context)
        yield from checks.evaluate_stored(
            checks.RunScope(
                name,
                first_day,
                last_day,
                rank_size=settings.rank_size,
                highest_first=highest_first,
            )
        )

    return ranking


def _which(highest_first: bool) -> str:
    return "highest" if highest_first else "lowest"


top_ranking = _ranking_asset(
    "top_ranking",
    highest_first=True,
    description="Each day's coins with the highest period return (rank 1 = highest), "
    "among every coin with a stored return; ties by ticker, then coin id.",
)
bottom_ranking = _ranking_asset(
    "bottom_ranking",
    highest_first=False,
    description="Each day's coins with the lowest period return (rank 1 = lowest), "
    "among every coin with a stored return; ties by ticker, then coin id.",
)
