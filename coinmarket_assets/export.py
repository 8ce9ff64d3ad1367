"""``coinmarket export``: a data table or read view, optionally limited to a range of days, as
CSV or Parquet with every value exactly as stored."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import psycopg
from psycopg import sql

from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.tables import TABLES

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("csv", "parquet")
DAILY_CLOSES = "daily_closes"
PARQUET_BATCH_ROWS = 50_000


@dataclass(frozen=True)
class Relation:
    """A table or view that can be exported, and how its rows are ordered and dated."""

    name: str
    order_by: tuple[str, ...]
    date_column: str | None  # None: a snapshot without days; --from/--to do not apply


RELATIONS: dict[str, Relation] = {
    **{name: Relation(name, spec.primary_key, spec.date_column) for name, spec in TABLES.items()},
    "latest_market": Relation("latest_market", ("coin_id",), None),
    DAILY_CLOSES: Relation(DAILY_CLOSES, ("trade_date",), "trade_date"),
}


class ExportError(ValueError):
    """The export was asked for something that does not exist or does not apply."""


@dataclass(frozen=True)
class ExportRequest:
    relation: Relation
    format: str
    first_day: date | None = None
    last_day: date | None = None
    output: Path | None = None  # None: CSV on standard output


def export_request(
    name: str,
    format: str = "csv",
    first_day: date | None = None,
    last_day: date | None = None,
    output: Path | None = None,
) -> ExportRequest:
    """A checked request; raises ExportError naming what is wrong and what is allowed."""
    relation = RELATIONS.get(name)
    if relation is None:
        raise ExportError(f"unknown table {name!r}; choose one of {', '.join(RELATIONS)}")
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "parquet" and output is None:
        raise ExportError("parquet needs --output FILE (it cannot be written to standard output)")
    if relation.date_column is None and (first_day or last_day):
        raise ExportError(f"{name} has no days to choose from; leave out --from and --to")
    if first_day and last_day and last_day < first_day:
        raise ExportError(f"--to {last_day} is before --from {first_day}")
    return ExportRequest(relation, format, first_day, last_day, output)


def export(request: ExportRequest, stdout: BinaryIO, url: str | None = None) -> int:
    """Write the rows the request selects; return how many were written.

    A file appears only complete: it is written next to its destination and renamed at the end.
    """
    with connect(url) as conn:
        # One snapshot for every statement: daily_closes' columns are read before its rows.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        query = _query(conn, request)
        if request.output is None:
            return _copy_csv(conn, query, stdout)
        with _replaced_atomically(request.output) as partial:
            if request.format == "csv":
                with partial.open("wb") as file:
                    return _copy_csv(conn, query, file)
            return _write_parquet(conn, query, partial)


def _query(conn: psycopg.Connection, request: ExportRequest) -> sql.Composed:
    relation = request.relation
    columns = _wide_closes(conn) if relation.name == DAILY_CLOSES else sql.SQL("*")
    query = sql.SQL("SELECT {} FROM {}").format(columns, sql.Identifier(relation.name))
    conditions = []
    if request.first_day:
        first = sql.Literal(request.first_day)
        conditions.append(sql.SQL("{} >= {}").format(_date_column(relation), first))
    if request.last_day:
        last = sql.Literal(request.last_day)
        conditions.append(sql.SQL("{} <= {}").format(_date_column(relation), last))
    if conditions:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
    return query + sql.SQL(" ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, relation.order_by))
    )


def _date_column(relation: Relation) -> sql.Identifier:
    assert relation.date_column is not None
    return sql.Identifier(relation.date_column)


def _wide_closes(conn: psycopg.Connection) -> sql.Composable:
    """daily_closes exported wide: trade_date, then one column of closes per coin.

    Columns are named by ticker; coins sharing a ticker get ``TICKER_<coin id>``.
    """
    row = conn.execute(sql.SQL("SELECT coin_ids, tickers FROM daily_closes LIMIT 1")).fetchone()
    coin_ids, tickers = row if row else ([], [])
    columns = [sql.Identifier("trade_date")]
    for position, (coin_id, ticker) in enumerate(zip(coin_ids, tickers, strict=True), start=1):
        name = ticker if tickers.count(ticker) == 1 else f"{ticker}_{coin_id}"
        element = sql.SQL("closes[{}] AS {}").format(sql.Literal(position), sql.Identifier(name))
        columns.append(element)
    return sql.SQL(", ").join(columns)


def _copy_csv(conn: psycopg.Connection, query: sql.Composed, file: BinaryIO) -> int:
    # The session's extra_float_digits=3 makes PostgreSQL print floats that round-trip exactly.
    copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(query)
    with conn.cursor() as cursor:
        with cursor.copy(copy_sql) as copy:
            for chunk in copy:
                file.write(chunk)
        file.flush()
        return cursor.rowcount


@contextmanager
def _replaced_atomically(destination: Path) -> Iterator[Path]:
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        yield partial
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def _write_parquet(conn: psycopg.Connection, query: sql.Composed, path: Path) -> int:
    """Rows fetched in binary (exact doubles) through a server-side cursor, written in batches."""
    # Imported here: pyarrow takes a while to load and only parquet exports need it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    written = 0
    with conn.cursor(name="coinmarket_export", binary=True) as cursor:
        cursor.execute(query)
        schema = pa.schema(
            [(column.name, _arrow_type(column.type_code)) for column in cursor.description]
        )
        with pq.ParquetWriter(path, schema) as writer:
            while rows := cursor.fetchmany(PARQUET_BATCH_ROWS):
                columns = list(zip(*rows, strict=True))
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
                written += len(rows)
            if not written:
                writer.write_table(schema.empty_table())
    return written


def _arrow_type(oid: int) -> "pa.DataType":
    import pyarrow as pa

    scalars = {
        "bool": pa.bool_(),
        "int2": pa.int16(),
        "int4": pa.int32(),
        "int8": pa.int64(),
        "float8": pa.float64(),
        "text": pa.string(),
        "date": pa.date32(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }
    info = psycopg.postgres.types.get(oid)
    if info is None or info.name not in scalars:
        name = info.name if info else f"oid {oid}"
        raise ExportError(f"cannot write PostgreSQL type {name} to parquet")
    # The registry answers an array's oid with its element type.
    return pa.list_(scalars[info.name]) if oid == info.array_oid else scalars[info.name]
