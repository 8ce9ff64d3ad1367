"""The Dagster environment variables the project relies on, set where configuration lives.

The launcher (``coinmarket``) sets them for every process it starts; the deploy variants in
``deploy/`` list them; people who run ``dagster`` themselves export them (docs/deployment.md).
"""

DAGSTER_FLAGS: dict[str, str] = {
    # Materialization events of a long single-run backfill are written in batches instead of
    # one connection per partition and asset; Dagster reads this variable at each write.
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    # A single-run backfill plans each asset once, for its whole range of days, instead of one
    # planned event per day and asset. The price: Dagster does not mark the days of a failed
    # run as failed partitions in the UI.
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
}
