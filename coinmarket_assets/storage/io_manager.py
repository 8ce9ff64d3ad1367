"""The partition-aware Postgres IO manager that persists every asset into its table.

It loads with the code location, so pandas, psycopg and yoyo (through ``table_io`` and
``migrations``) are imported when a step first reads or writes, not when the UI starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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

    from coinmarket_assets.storage.table_io import DayWrite

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class CoinRows:
    """A per-coin table's rows for a run's universe: its days are replaced for ``coin_ids`` only."""

    frame: pd.DataFrame
    coin_ids: Sequence[int]


@dataclass(frozen=True)
class FrameStream:
    """A table's rows for the run's days made batch by batch: ``batches()`` yields the frames
    (called again if the write is retried), written in one transaction, so a step holds one
    batch at a time. With ``coin_ids`` only those coins' rows of the days are replaced, else
    the days whole; fetched tables merge as ``CoinRows`` do.

    ``lookback``: rows dated before the run's days are inserted where none is stored.
    ``summary()``: metadata known once the batches are consumed (counts, what was skipped).
    A batch that raises ``KeepStoredRows`` rolls the write back and keeps the stored rows.
    """

    batches: Callable[[], Iterable[pd.DataFrame]]
    coin_ids: Sequence[int] | None = None
    lookback: bool = False
    summary: Callable[[], Mapping[str, object]] = dict


class KeepStoredRows(Exception):
    """Raised from a ``FrameStream``'s batches: write nothing, keep the stored rows; the step
    succeeds, and its metadata and log say why (the exception's message)."""


@dataclass
class TableBatches:
    """A partitioned input read on demand, a batch at a time, instead of one DataFrame.

    What ``AssetIn(metadata={"batched": True})`` hands a step: the table, the input's window of
    days and columns. Reads run under the step's lock, taken when the input was loaded; each
    batch is one COPY of whole coins (or whole days), parsed as ``load_input`` parses.
    """

    url: str
    spec: TableSpec
    first_day: date
    end_exclusive: date
    columns: Sequence[str] | None = None
    check_lock: Callable[[], None] = lambda: None
    rows_read: int = field(default=0, init=False)
    batches_read: int = field(default=0, init=False)
    seconds: float = field(default=0.0, init=False)

    def coin_ids(self) -> list[int]:
        """The coins with a row in the window, by id."""
        return _coin_ids(self.url, self.spec, self.first_day, self.end_exclusive, self.check_lock)

    def by_coins(self, coin_ids: Sequence[int], size: int) -> Iterator[pd.DataFrame]:
        """The window's rows of ``coin_ids``, ``size`` whole coins per frame, in id order."""
        ordered = sorted(coin_ids)
        for start in range(0, len(ordered), size):
            yield self._read(coin_ids=ordered[start : start + size])

    def by_days(self, days: int) -> Iterator[tuple[date, date, pd.DataFrame]]:
        """The window's rows, ``days`` whole days per frame: (first day, last day, rows)."""
        first = self.first_day
        while first < self.end_exclusive:
            end = min(first + timedelta(days=days), self.end_exclusive)
            yield first, end - timedelta(days=1), self._read(first_day=first, end_exclusive=end)
            first = end

    def _read(self, **scope: object) -> pd.DataFrame:
        started = time.perf_counter()
        window = {"first_day": self.first_day, "end_exclusive": self.end_exclusive}
        frame = _read_batch(
            self.url, self.spec, self.check_lock, **{**window, **scope}, columns=self.columns
        )
        self.rows_read += len(frame)
        self.batches_read += 1
        self.seconds += time.perf_counter() - started
        return frame

    def query(self, statement: str, params: Mapping[str, object]) -> list[tuple]:
        """The rows of a narrow query (psycopg parameters) for a step that needs a few rows of
        the input, not whole coins or days; under the step's lock, counted as a batch read."""
        started = time.perf_counter()
        rows = _query(self.url, self.check_lock, statement, params)
        self.rows_read += len(rows)
        self.batches_read += 1
        self.seconds += time.perf_counter() - started
        return rows

    def log_line(self) -> str:
        """One key=value line: what the step read through this input, in how many batches."""
        last_day = self.end_exclusive - timedelta(days=1)
        return (
            f"event=table_read table={self.spec.name} first_day={self.first_day} "
            f"last_day={last_day} batches={self.batches_read} rows={self.rows_read} "
            f"seconds={self.seconds:.3f}"
        )


@retry_on_lost_connection
def _read_batch(
    url: str, spec: TableSpec, check_lock: Callable[[], None], **scope: object
) -> pd.DataFrame:
    from coinmarket_assets.storage.table_io import read_rows

    check_lock()  # again on a retry: the lock's session may have gone with the connection
    with connect(url) as conn:
        return read_rows(conn, spec, **scope)


@retry_on_lost_connection
def _query(
    url: str, check_lock: Callable[[], None], statement: str, params: Mapping[str, object]
) -> list[tuple]:
    check_lock()
    with connect(url) as conn:
        return conn.execute(statement, params).fetchall()


@retry_on_lost_connection
def _coin_ids(
    url: str, spec: TableSpec, first_day: date, end_exclusive: date, check_lock: Callable[[], None]
) -> list[int]:
    from coinmarket_assets.storage.table_io import coin_ids_in_window

    check_lock()
    with connect(url) as conn:
        return coin_ids_in_window(conn, spec, first_day, end_exclusive)


class PostgresIOManager(ConfigurableIOManager):
    """Stores each asset in the table named by its key: whole days atomically, with COPY.

    Partitioned assets replace the rows of the run's days (and universe, for ``CoinRows``);
    inputs load exactly the days their partition mapping asks for, and only the columns that
    the input's ``columns`` metadata names, if any; with ``batched`` metadata an input is a
    ``TableBatches`` reader, and a ``FrameStream`` output is written batch by batch in one
    transaction, so a step holds one batch at a time. A step that reads tables holds a lock
    named after it from its first read to its write, so that concurrent runs computing the
    same asset take turns instead of overwriting each other with stale inputs.
    Reads and writes are retried while the database restarts.
    """

    url: str | None = Field(default=None, description="Overrides COINMARKET_DATABASE_URL.")
    _url: str = PrivateAttr()
    _run_id: str = PrivateAttr()
    _step_locks: dict[str, SessionLock] = PrivateAttr(default_factory=dict)
    _readers: dict[str, list[TableBatches]] = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._url = self.url or database_url()
        self._run_id = context.run.run_id if context.run else "no run"
        from coinmarket_assets.storage.migrations import ensure_schema_current

        ensure_schema_current(self._url)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        for step in list(self._step_locks):
            self._unlock_step(step)
        self._readers.clear()

    def handle_output(
        self, context: OutputContext, obj: pd.DataFrame | CoinRows | FrameStream | None
    ) -> None:
        started = time.perf_counter()
        step = context.op_def.name
        if obj is None:  # the asset had nothing to store: the stored rows stay as they are
            self._unlock_step(step)
            context.log.info(
                f"event=table_write table={context.asset_key.path[-1]} mode=keep rows=0"
            )
            return
        try:
            with no_retry_unless_transient():
                self._check_step_lock(step)
                if isinstance(obj, FrameStream):
                    metadata = self._write_kept_or_stream(context, obj)
                else:
                    metadata = self._write(context, obj)
            seconds = time.perf_counter() - started
        finally:
            self._unlock_step(step)
        # Batched inputs are read while the stream is written: their totals are known now.
        for reader in self._readers.pop(step, []):
            context.log.info(reader.log_line())
            metadata[f"run_rows_read_{reader.spec.name}"] = reader.rows_read
        context.log.info(_write_line(context, metadata, seconds))
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> pd.DataFrame | TableBatches:
        started = time.perf_counter()
        with no_retry_unless_transient():
            self._lock_step(context)
            if context.definition_metadata.get("batched"):
                return self._batches(context)
            frame = self._read(context)
        context.log.info(_read_line(context, len(frame), time.perf_counter() - started))
        return frame

    def _batches(self, context: InputContext) -> TableBatches:
        """The input as a lazy reader; its reads are checked against the step's lock."""
        if not context.has_asset_partitions:
            raise ValueError("only partitioned inputs are read in batches")
        step = context.op_def.name
        reader = TableBatches(
            self._url,
            _spec(context.asset_key.path[-1]),
            *_days(context),
            columns=context.definition_metadata.get("columns"),
            check_lock=lambda: self._check_step_lock(step),
        )
        self._readers.setdefault(step, []).append(reader)
        return reader

    def _write_kept_or_stream(self, context: OutputContext, stream: FrameStream) -> dict:
        try:
            metadata = self._write_stream(context, stream)
        except KeepStoredRows as kept:
            context.log.warning(f"nothing written, the stored rows stay: {kept}")
            metadata = {"dagster/table_name": context.asset_key.path[-1], "run_rows_written": 0}
        return metadata | dict(stream.summary())

    @retry_on_lost_connection
    def _write_stream(self, context: OutputContext, stream: FrameStream) -> dict[str, object]:
        from coinmarket_assets.storage.table_io import replace_days_streamed

        spec = _spec(context.asset_key.path[-1])
        if not context.has_asset_partitions:
            raise TypeError(f"Asset {spec.name}: only daily tables are written as a stream")
        first_day, end_exclusive = _days(context)
        with connect(self._url) as conn:
            # Called again on a retry: the batches are computed anew, the write stays whole.
            write = replace_days_streamed(
                conn,
                spec,
                stream.batches(),
                first_day,
                end_exclusive,
                stream.coin_ids,
                lookback=stream.lookback,
                tail_rows=PREVIEW_ROWS,
            )
        return _day_metadata(
            spec, write, first_day, end_exclusive, stream.coin_ids, stream.lookback
        )

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
        with connect(self._url) as conn:
            if not context.has_asset_partitions:
                upsert(conn, spec, frame)
                return {
                    "dagster/table_name": spec.name,
                    "run_rows_written": len(frame),
                    "preview": MetadataValue.md(_preview(frame)),
                }
            first_day, end_exclusive = _days(context)
            write = replace_days(conn, spec, frame, first_day, end_exclusive, coin_ids)
        return _day_metadata(spec, write, first_day, end_exclusive, coin_ids, lookback=False)

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


def _day_metadata(
    spec: TableSpec,
    write: DayWrite,
    first_day: date,
    end_exclusive: date,
    coin_ids: Sequence[int] | None,
    lookback: bool,
) -> dict[str, object]:
    """A write of days as metadata; a ranged run records one materialization per day, each
    carrying these run totals."""
    metadata: dict[str, object] = {
        "dagster/table_name": spec.name,
        "run_rows_written": write.written,
        "run_days": (end_exclusive - first_day).days,
        "run_rows_replaced": write.replaced,
    }
    if spec.revision_columns:
        metadata["run_rows_revised"] = write.revised
        metadata["run_rows_not_refetched"] = write.kept
    if coin_ids is not None:
        metadata["run_coins"] = len(coin_ids)
    if lookback:
        metadata["run_rows_inserted_before"] = write.inserted_before
    tail = write.tail
    metadata["preview"] = MetadataValue.md("_no rows_" if tail is None else _preview(tail))
    return metadata


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
        "inserted_before": "run_rows_inserted_before",
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
