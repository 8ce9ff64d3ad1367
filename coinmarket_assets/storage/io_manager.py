"""The partition-aware Postgres IO manager that persists every asset into its table.

It loads with the code location, so pandas, psycopg and yoyo (through ``table_io`` and
``migrations``) are imported when a step first reads or writes, not when the UI starts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from dagster import (
    ConfigurableIOManager,
    InitResourceContext,
    InputContext,
    MetadataValue,
    OutputContext,
)
from pydantic import Field, PrivateAttr

from coinmarket_assets.retries import no_retry_unless_transient
from coinmarket_assets.storage.database import connect, database_url, retry_on_lost_connection
from coinmarket_assets.storage.locks import LockLostError, SessionLock
from coinmarket_assets.storage.tables import TABLES, TableSpec

if TYPE_CHECKING:
    import pandas as pd

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class CoinRows:
    """A per-coin table's rows for a run's universe: its days are replaced for ``coin_ids`` only."""

    frame: pd.DataFrame
    coin_ids: Sequence[int]


class PostgresIOManager(ConfigurableIOManager):
    """Stores each asset in the table named by its key: whole days atomically, with COPY.

    Partitioned assets replace the rows of the run's days (and universe, for ``CoinRows``);
    inputs load exactly the days their partition mapping asks for, and only the columns that
    the input's ``columns`` metadata names, if any. A step that reads tables holds a lock
    named after it from its first read to its write, so that concurrent runs computing the
    same asset take turns instead of overwriting each other with stale inputs.
    Reads and writes are retried while the database restarts.
    """

    url: str | None = Field(default=None, description="Overrides COINMARKET_DATABASE_URL.")
    _url: str = PrivateAttr()
    _run_id: str = PrivateAttr()
    _step_locks: dict[str, SessionLock] = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._url = self.url or database_url()
        self._run_id = context.run.run_id if context.run else "no run"
        from coinmarket_assets.storage.migrations import ensure_schema_current

        ensure_schema_current(self._url)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        for step in list(self._step_locks):
            self._unlock_step(step)

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | CoinRows) -> None:
        started = time.perf_counter()
        try:
            with no_retry_unless_transient():
                self._check_step_lock(context.op_def.name)
                metadata = self._write(context, obj)
            seconds = time.perf_counter() - started
        finally:
            self._unlock_step(context.op_def.name)
        context.log.info(_write_line(context, metadata, seconds))
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> pd.DataFrame:
        started = time.perf_counter()
        with no_retry_unless_transient():
            self._lock_step(context)
            frame = self._read(context)
        context.log.info(_read_line(context, len(frame), time.perf_counter() - started))
        return frame

    @retry_on_lost_connection
    def _write(self, context: OutputContext, obj: pd.DataFrame | CoinRows) -> dict[str, object]:
        import pandas as pd

        from coinmarket_assets.storage.table_io import replace_days, upsert

        spec = _spec(context.asset_key.path[-1])
        frame, coin_ids = (obj.frame, obj.coin_ids) if isinstance(obj, CoinRows) else (obj, None)
        if not isinstance(frame, pd.DataFrame):
            # Asset signatures name ``Frame`` (``Any`` to Dagster), so the type is checked here.
            raise TypeError(
                f"Asset {spec.name} returned {type(frame).__name__}; the Postgres IO manager "
                "stores pandas DataFrames (or CoinRows holding one)"
            )
        # A ranged run records one materialization per day, each carrying these run totals.
        metadata: dict[str, object] = {
            "dagster/table_name": spec.name,
            "run_rows_written": len(frame),
        }
        with connect(self._url) as conn:
            if context.has_asset_partitions:
                first_day, end_exclusive = _days(context)
                write = replace_days(conn, spec, frame, first_day, end_exclusive, coin_ids)
                metadata |= {
                    "run_days": (end_exclusive - first_day).days,
                    "run_rows_replaced": write.replaced,
                }
                if spec.revision_columns:
                    metadata["run_rows_revised"] = write.revised
                    metadata["run_rows_not_refetched"] = write.kept
                if coin_ids is not None:
                    metadata["run_coins"] = len(coin_ids)
            else:
                upsert(conn, spec, frame)
        metadata["preview"] = MetadataValue.md(_preview(frame))
        return metadata

    @retry_on_lost_connection
    def _read(self, context: InputContext) -> pd.DataFrame:
        from coinmarket_assets.storage.table_io import read_rows

        spec = _spec(context.asset_key.path[-1])
        # As Dagster's own database IO managers: AssetIn(metadata={"columns": [...]}) narrows.
        columns = context.definition_metadata.get("columns")
        with connect(self._url) as conn:
            if context.has_asset_partitions:
                return read_rows(conn, spec, *_days(context), columns=columns)
            return read_rows(conn, spec, columns=columns)

    def _lock_step(self, context: InputContext) -> None:
        step = context.op_def.name
        self._check_step_lock(step)
        if step not in self._step_locks:
            lock = SessionLock(self._url, f"step {step}", f"run {self._run_id[:8]}")
            try:
                lock.acquire(context.log)
            except BaseException:
                lock.release()
                raise
            self._step_locks[step] = lock

    def _check_step_lock(self, step: str) -> None:
        """Fail the step (transiently) when its lock went with a lost database session: another
        run may have taken it since, so the inputs must be read again under a new lock."""
        lock = self._step_locks.get(step)
        if lock is not None and not lock.is_held():
            self._unlock_step(step)
            raise LockLostError(f"the lock of step {step} was lost with its database session")

    def _unlock_step(self, step: str) -> None:
        lock = self._step_locks.pop(step, None)
        if lock is not None:
            lock.release()


def _spec(table: str) -> TableSpec:
    if table not in TABLES:
        raise KeyError(f"The Postgres IO manager has no table for asset {table!r}")
    return TABLES[table]


def _days(context: InputContext | OutputContext) -> tuple[date, date]:
    window = context.asset_partitions_time_window
    return window.start.date(), window.end.date()


def _day_range(context: InputContext | OutputContext) -> str:
    if not context.has_asset_partitions:
        return ""
    first_day, end_exclusive = _days(context)
    return f" first_day={first_day} last_day={end_exclusive - timedelta(days=1)}"


def _write_line(context: OutputContext, metadata: Mapping[str, object], seconds: float) -> str:
    """One key=value log line per table write: where, how many rows, how long."""
    table = context.asset_key.path[-1]
    if not context.has_asset_partitions:
        return (
            f"event=table_write table={table} mode=upsert "
            f"rows={metadata['run_rows_written']} seconds={seconds:.3f}"
        )
    counts = {
        "days": "run_days",
        "coins": "run_coins",
        "rows": "run_rows_written",
        "replaced": "run_rows_replaced",
        "revised": "run_rows_revised",
        "not_refetched": "run_rows_not_refetched",
    }
    fields = " ".join(f"{key}={metadata[name]}" for key, name in counts.items() if name in metadata)
    return f"event=table_write table={table}{_day_range(context)} {fields} seconds={seconds:.3f}"


def _read_line(context: InputContext, rows: int, seconds: float) -> str:
    table = context.asset_key.path[-1]
    return f"event=table_read table={table}{_day_range(context)} rows={rows} seconds={seconds:.3f}"


def _preview(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no rows_"
    shown = frame.tail(PREVIEW_ROWS).copy()
    for column in shown.select_dtypes(include="datetime64").columns:
        shown[column] = shown[column].dt.strftime("%Y-%m-%d")
    return shown.to_markdown(index=False, floatfmt=".10g")
