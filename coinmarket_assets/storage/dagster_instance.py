"""Dagster's run, event and schedule storage on the project's database, in its own schema.

``dagster.yaml`` names the three classes below as its ``run_storage``, ``event_log_storage``
and ``schedule_storage``: dagster-postgres' own storages on ``COINMARKET_DATABASE_URL``, with
pooled connections, and an event log that masks secrets.
"""

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

import psycopg
from dagster import EventLogEntry, Field, StringSource, deserialize_value, serialize_value
from dagster._core.events import AssetCheckEvaluationPlanned
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from psycopg import sql

from coinmarket_assets.masking import contains_secret, mask_json_strings, secret_forms
from coinmarket_assets.storage.database import database_url, with_driver, with_options
from coinmarket_assets.storage.locks import session_lock

if TYPE_CHECKING:
    from dagster._serdes import ConfigurableClassData

DEFAULT_SCHEMA = "dagster"
# Pooled connections, one held open per storage and process: stock dagster-postgres connects
# anew for every statement. No statement timeout (0), unlike the webserver's.
POOL = {"statement_timeout": 0, "pool_recycle": 3600, "max_overflow": 4}


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


class OnProjectDatabase:
    """A dagster-postgres storage (the class after this one in the bases) on the project's
    database, in schema ``schema``, with pooled connections."""

    def __init__(
        self, schema: str = DEFAULT_SCHEMA, inst_data: "ConfigurableClassData | None" = None
    ) -> None:
        url = database_url()
        # Two processes starting on a new database (say, two CLI runs) would both create the
        # schema and Dagster's tables; one at a time, the second finds them there.
        with session_lock(url, f"dagster storage {schema}", f"pid {os.getpid()}"):
            create_schema(url, schema)
            super().__init__(dagster_storage_url(url, schema), inst_data=inst_data)
        # dagster-postgres' public way to hold pooled connections (the webserver calls it too).
        self.optimize_for_webserver(**POOL)

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"schema": Field(StringSource, is_required=False, default_value=DEFAULT_SCHEMA)}

    @classmethod
    def from_config_value(
        cls, inst_data: "ConfigurableClassData | None", config_value: Mapping[str, Any]
    ) -> Self:
        return cls(schema=config_value.get("schema", DEFAULT_SCHEMA), inst_data=inst_data)


class CoinmarketRunStorage(OnProjectDatabase, PostgresRunStorage):
    """Dagster's runs, on the project's database."""


class CoinmarketScheduleStorage(OnProjectDatabase, PostgresScheduleStorage):
    """Dagster's schedule and sensor state, on the project's database."""


class CoinmarketEventLogStorage(OnProjectDatabase, PostgresEventLogStorage):
    """Dagster's event log, on the project's database: it masks secrets in every event it
    stores, and records the checks a ranged run plans faster.

    Dagster records a planned check as one row per day of the run, and serialises the same
    event again for each row in one statement of thousands of VALUES: the 8-year benchmark run
    (eleven checks, 32,000 rows) spent about 15 s of CPU on it before its first step, doubling
    its CPU time. The rows here are the same, from one serialisation, inserted as a batch of the
    same statement (a test compares them with stock rows).
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
