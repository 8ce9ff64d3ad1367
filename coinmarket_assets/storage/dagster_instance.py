"""Dagster's run, event and schedule storage on the project's database, in its own schema."""

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from dagster import EventLogEntry, Field, StringSource, deserialize_value
from dagster._core.events import AssetCheckEvaluationPlanned
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._serdes import ConfigurableClassData, serialize_value
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import create_pg_engine
from psycopg import sql

from coinmarket_assets.masking import contains_secret, mask_json_strings, secret_forms
from coinmarket_assets.storage.database import database_url, with_driver, with_options
from coinmarket_assets.storage.locks import session_lock

DEFAULT_SCHEMA = "dagster"
# Materialization events of a long single-run backfill are written in batches instead of one
# connection per partition and asset; Dagster reads this variable at each write.
EVENT_BATCH_SIZE = "1000"
# A single-run backfill plans each asset once, for its whole range of days, instead of writing
# one planned event per day and asset (14,610 events, ~22 s, for 8 years of five assets). The
# price: Dagster does not mark the days of a failed run as failed partitions in the UI.
PLANNED_EVENTS_AS_RANGES = "true"


def dagster_storage_url(url: str, schema: str) -> str:
    """A SQLAlchemy psycopg2 URL whose sessions use ``schema`` and skip waiting for WAL flushes.

    ``synchronous_commit=off`` only applies to Dagster's bookkeeping: a crash may lose the last
    few event records, never the data tables, which are written over separate connections.
    """
    return with_options(
        with_driver(url, "psycopg2"),
        f"-csearch_path={schema}",
        "-csynchronous_commit=off",
    )


class DagsterSchemaError(RuntimeError):
    """Dagster's schema is missing and the database role may not create it."""


def create_schema(url: str, schema: str) -> None:
    """Create Dagster's schema unless it exists.

    Looked up first: ``CREATE SCHEMA IF NOT EXISTS`` needs CREATE on the database even when the
    schema exists, which a least-privilege pipeline role does not have.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone():
            return
        name = sql.Identifier(schema)
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        except psycopg.errors.InsufficientPrivilege as error:
            role = sql.Identifier(conn.info.user).as_string(conn)
            raise DagsterSchemaError(
                f"Schema {schema!r} for Dagster's storage does not exist and role {role} may "
                f"not create it. An administrator must run: CREATE SCHEMA {name.as_string(conn)} "
                f"AUTHORIZATION {role}; (deploy/least_privilege.sql does)."
            ) from error


def masked_event(event: EventLogEntry) -> EventLogEntry:
    """``event`` with every known secret masked wherever it appears: its message, an error's
    message, cause and context, metadata, tags.

    Serialised and looked up (the secrets' forms include their JSON escapes, once and twice for
    JSON inside a string); only if found, masked string by string in the parsed JSON.
    """
    if not secret_forms():
        return event
    serialized = serialize_value(event)
    if not contains_secret(serialized):
        return event
    return deserialize_value(json.dumps(mask_json_strings(json.loads(serialized))), EventLogEntry)


class CoinmarketEventLogStorage(PostgresEventLogStorage):
    """dagster-postgres' event log that masks secrets in every event it stores, with a faster
    record of the checks a ranged run plans.

    Dagster records a planned check as one row per day of the run, and serialises the same
    event again for each row in one statement of thousands of VALUES: an 8-year run of eleven
    checks spent about 5 s on it before its first step. The rows here are the same, from one
    serialisation, inserted as a batch of the same statement.
    """

    def store_event(self, event: EventLogEntry) -> None:
        super().store_event(masked_event(event))

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        super().store_event_batch([masked_event(event) for event in events])

    def _store_asset_check_evaluation_planned(
        self, event: EventLogEntry, event_id: int | None
    ) -> None:
        dagster_event = event.dagster_event
        assert dagster_event is not None
        planned = dagster_event.event_specific_data
        assert isinstance(planned, AssetCheckEvaluationPlanned)
        subset = planned.partitions_subset
        partitions = subset.get_partition_keys() if subset is not None else [None]
        row = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.insert(),
                [{**row, "partition": partition} for partition in partitions],
            )


class CoinmarketDagsterStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` on ``COINMARKET_DATABASE_URL``, in schema ``dagster``."""

    def __init__(
        self, schema: str = DEFAULT_SCHEMA, inst_data: ConfigurableClassData | None = None
    ):
        url = database_url()
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
        os.environ.setdefault(
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", PLANNED_EVENTS_AS_RANGES
        )
        postgres_url = dagster_storage_url(url, schema)
        # Two processes starting on a new database (say, two CLI runs) would both create the
        # schema and Dagster's tables; one at a time, the second finds them there.
        with session_lock(url, f"dagster storage {schema}", f"pid {os.getpid()}"):
            create_schema(url, schema)
            super().__init__(postgres_url=postgres_url, inst_data=inst_data)
        # Tables were created (or found) just above, by the stock event log storage.
        self._event_log_storage.dispose()
        self._event_log_storage = CoinmarketEventLogStorage(
            postgres_url, should_autocreate_tables=False
        )
        self._pool_connections(postgres_url)

    def _pool_connections(self, postgres_url: str) -> None:
        """Reuse connections instead of opening one per event.

        Stock dagster-postgres connects anew for every event record (NullPool); a single-run
        backfill of years writes tens of thousands of planned-materialization events one by one.
        The webserver swaps in its own pooled engines (``optimize_for_webserver``).
        """
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            storage._engine.dispose()
            storage._engine = create_pg_engine(
                postgres_url,
                isolation_level="AUTOCOMMIT",
                pool_size=1,
                max_overflow=4,
                pool_recycle=3600,
                pool_pre_ping=True,
            )

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"schema": Field(StringSource, is_required=False, default_value=DEFAULT_SCHEMA)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "CoinmarketDagsterStorage":
        return cls(schema=config_value.get("schema", DEFAULT_SCHEMA), inst_data=inst_data)
