"""A code location of one asset that records the Dagster flags of the process running it."""

import os

from dagster import (
    BackfillPolicy,
    DailyPartitionsDefinition,
    Definitions,
    MaterializeResult,
    asset,
)

from coinmarket_assets.dagster_flags import DAGSTER_FLAGS


@asset(
    partitions_def=DailyPartitionsDefinition(start_date="2020-01-01"),
    backfill_policy=BackfillPolicy.single_run(),
)
def dagster_flags_seen() -> MaterializeResult:
    """The Dagster flags in the environment of the step's process."""
    return MaterializeResult(metadata={name: os.environ.get(name, "") for name in DAGSTER_FLAGS})


defs = Definitions(assets=[dagster_flags_seen])
