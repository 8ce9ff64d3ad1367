"""How a run executes its steps: in processes forked from one that has loaded everything."""

from dagster import multiprocess_executor

# Modules a step needs, imported once per run by the fork server instead of once per step
# process (about a second each: Dagster's Postgres storage, pandas, numpy, pyarrow, psycopg and
# the project's own).
STEP_MODULES = [
    "coinmarket_assets.definitions",
    "coinmarket_assets.storage.dagster_instance",
    "coinmarket_assets.storage.table_io",
    "coinmarket_assets.storage.migrations",
    "coinmarket_assets.compute.indicators",
    "coinmarket_assets.compute.rankings",
    "coinmarket_assets.sources.validation",
    "coinmarket_assets.sources.csv_source",
    "coinmarket_assets.sources.coinmarketcap.source",
]

step_executor = multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": STEP_MODULES}}},
    name="forked_step_executor",
)
