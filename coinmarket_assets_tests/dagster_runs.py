"""Running the real asset graph in-process with ``dagster.materialize``, and reading tables."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from dagster import (
    DagsterInstance,
    ExecuteInProcessResult,
    JobExecutionResult,
    RunRequest,
    SensorDefinition,
    SkipReason,
    build_sensor_context,
    materialize,
)
from psycopg import sql

from coinmarket_assets.definitions import defs
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.schedules import partition_range_tags
from coinmarket_assets.storage.database import DATABASE_URL_ENV, connect
from coinmarket_assets.storage.table_io import read_rows
from coinmarket_assets.storage.tables import DAILY_TABLES, TABLES, TIMESTAMP
from coinmarket_testkit.synthetic import SyntheticMarket

# The daily tables' assets (partitions.DAILY_TABLE_ASSETS), by name.
PARTITIONED_ASSETS = list(DAILY_TABLES)


def materialize_days(
    first_day: str,
    last_day: str,
    selection: Sequence[str] = PARTITIONED_ASSETS,
    resources: Mapping[str, object] | None = None,
    raise_on_error: bool = True,
) -> ExecuteInProcessResult:
    """One run over the partitions first_day..last_day, as a single-run backfill does."""
    return materialize(
        assets=list(defs.assets),
        selection=list(selection),
        resources={**defs.resources, **(resources or {})},
        tags=partition_range_tags(first_day, last_day),
        instance=DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def materialize_unpartitioned(
    selection: Sequence[str], resources: Mapping[str, object] | None = None
) -> ExecuteInProcessResult:
    return materialize(
        assets=list(defs.assets),
        selection=list(selection),
        resources={**defs.resources, **(resources or {})},
        instance=DagsterInstance.ephemeral(),
    )


def materialize_market(
    url: str, source: Path, market: SyntheticMarket, first_day: str, last_day: str, **env: str
) -> None:
    """``market`` written as a csv: source in ``source``, then currency_status and the days
    first_day..last_day materialized into the database ``url`` (with the settings in ``env``)."""
    market.write_csv(source)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATABASE_URL_ENV, url)
        patch.setenv("COINMARKET_SOURCE", f"csv:{source}")
        patch.setenv("COINMARKET_TICKERS", ",".join(market.tickers))
        for name, value in env.items():
            patch.setenv(name, value)
        materialize_unpartitioned(["currency_status"])
        materialize_days(first_day, last_day)


def read_table(name: str) -> pd.DataFrame:
    """A data table as the IO manager loads it, from COINMARKET_DATABASE_URL."""
    with connect() as conn:
        return read_rows(conn, TABLES[name])


def dump_table(url: str, table: str, exclude: Sequence[str] = ()) -> bytes:
    """The table as CSV bytes ordered by its primary key, for byte-for-byte comparison."""
    spec = TABLES[table]
    columns = ", ".join(c for c in spec.columns if c not in exclude)
    order = ", ".join(spec.primary_key)
    with (
        psycopg.connect(url) as conn,
        conn.cursor().copy(
            f"COPY (SELECT {columns} FROM {table} ORDER BY {order}) TO STDOUT (FORMAT csv)"
        ) as copy,
    ):
        return b"".join(bytes(chunk) for chunk in copy)


def dump_all(url: str) -> dict[str, bytes]:
    """Every data table without its bookkeeping timestamps (last_update, fetched_at)."""
    return {
        table: dump_table(url, table, exclude=[c for c, t in spec.types.items() if t == TIMESTAMP])
        for table, spec in TABLES.items()
    }


def empty_tables(url: str) -> None:
    """Remove every row of every data table."""
    tables = sql.SQL(", ").join(map(sql.Identifier, TABLES))
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(tables))


def failure_messages(result: ExecuteInProcessResult | JobExecutionResult) -> str:
    """Every step failure's error messages, causes included."""
    messages = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return "\n".join(messages)


def sensor_tick(
    sensor: SensorDefinition, instance: DagsterInstance | None = None, **resources: object
) -> RunRequest | SkipReason:
    """One tick of ``sensor``, as the daemon evaluates it, with the code location's resources
    (``resources`` replace them by key): its one run request, or why it skipped."""
    context = build_sensor_context(
        instance=instance or DagsterInstance.ephemeral(),
        resources={
            "source": MarketDataSourceResource(),
            "pipeline_settings": PipelineSettingsResource(),
            **resources,
        },
    )
    result = sensor.evaluate_tick(context)
    if result.run_requests:
        (request,) = result.run_requests
        return request
    return SkipReason(result.skip_message)
