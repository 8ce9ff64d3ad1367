"""Reading and writing the data tables with COPY, one transaction per write."""

import io
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from coinmarket_assets.storage.tables import (
    BOOL,
    DATE,
    FLOAT,
    ID,
    NULLABLE_INT,
    TEXT,
    TIMESTAMP,
    TableSpec,
)

# How COPY's CSV columns are parsed; dates become midnight timestamps, as pandas holds them.
_ARROW_TYPES = {
    ID: pa.int64(),
    NULLABLE_INT: pa.int64(),
    TEXT: pa.string(),
    FLOAT: pa.float64(),
    DATE: pa.timestamp("us"),
    TIMESTAMP: pa.timestamp("us", tz="UTC"),
    BOOL: pa.bool_(),
}


# Rows serialised per COPY chunk: while the server parses one chunk, the next is serialised.
COPY_CHUNK_ROWS = 50_000


def _copy_in(conn: psycopg.Connection, spec: TableSpec, frame: pd.DataFrame, table: str) -> None:
    """COPY the rows into ``table``; a writer thread sends each chunk while the next is made,
    so serialising overlaps the server's work (1.46M candles: 4.0 s instead of 6.3 s)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, spec.columns))
    )
    cursor = conn.cursor()
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        for start in range(0, len(frame), COPY_CHUNK_ROWS):
            copy.write(_csv(spec, frame.iloc[start : start + COPY_CHUNK_ROWS]))


def _csv(spec: TableSpec, frame: pd.DataFrame) -> memoryview:
    """The rows as CSV that COPY reads exactly: floats in their shortest round-trip form, NaN and
    missing values as NULL, strings quoted (so an empty string stays one), dates as dates.

    Arrow's writer does this about six times faster than ``DataFrame.to_csv``.
    """
    rows = pa.Table.from_pandas(frame[list(spec.columns)], preserve_index=False)
    for column, kind in spec.types.items():
        if kind == DATE:
            position = rows.schema.get_field_index(column)
            rows = rows.set_column(position, column, pc.cast(rows[column], pa.date32()))
    output = pa.BufferOutputStream()
    pa_csv.write_csv(rows, output, pa_csv.WriteOptions(include_header=False))
    return memoryview(output.getvalue())


def _lock(conn: psycopg.Connection, spec: TableSpec) -> None:
    # Two writers of the same days could both find nothing to delete and then collide on
    # the primary key; one lock per table serialises them.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [spec.name])


@dataclass(frozen=True)
class DayWrite:
    """What a write of days did to the stored rows in its scope."""

    replaced: int  # stored rows removed or overwritten
    revised: int = 0  # overwritten rows whose values changed
    kept: int = 0  # stored rows a re-fetch left out, kept as they were
    inserted_before: int = 0  # rows dated before the days, inserted where none was stored
    written: int = 0  # rows of the days written
    tail: pd.DataFrame | None = None  # the last written frame's last rows, for a preview


def replace_days(
    conn: psycopg.Connection,
    spec: TableSpec,
    frame: pd.DataFrame,
    first_day: date,
    end_exclusive: date,
    coin_ids: Sequence[int] | None = None,
) -> DayWrite:
    """Atomically write the rows dated from first_day up to end_exclusive.

    Derived tables: ``frame`` replaces every stored row of those days (and of ``coin_ids``).
    Fetched tables (with revision columns): each fetched row replaces its stored twin, counting
    revisions; stored rows the source did not return again are kept, and counted, so that a
    flaky or trimmed answer never deletes data.
    """
    _check_scope(spec, frame, first_day, end_exclusive, coin_ids)
    return replace_days_streamed(conn, spec, [frame], first_day, end_exclusive, coin_ids)


def replace_days_streamed(
    conn: psycopg.Connection,
    spec: TableSpec,
    frames: Iterable[pd.DataFrame],
    first_day: date,
    end_exclusive: date,
    coin_ids: Sequence[int] | None = None,
    *,
    lookback: bool = False,
    tail_rows: int = 5,
) -> DayWrite:
    """``replace_days`` of rows that come as a stream of frames, in one transaction, holding one
    frame at a time. Derived tables: the days (and ``coin_ids``) are deleted once and each frame
    COPYed as it comes. Fetched tables: the frames are staged and merged at the end (into an
    empty scope they go straight in). With ``lookback``, a frame's rows dated before first_day
    are inserted where no row is stored."""
    scope, params = _scope(spec, first_day, end_exclusive, coin_ids)
    with conn.transaction():
        _lock(conn, spec)
        target, replaced = spec.name, 0
        if not spec.revision_columns:
            replaced = _delete(conn, spec, scope, params)
        elif _has_rows(conn, spec, scope, params):
            target = _staging(conn, spec)
        written, inserted, tail = 0, 0, None
        for frame in frames:
            if lookback:
                early = frame[spec.date_column] < pd.Timestamp(first_day)
                if early.any():
                    _check_before(spec, frame[early], first_day, coin_ids)
                    inserted += _insert_absent(conn, spec, frame[early])
                frame = frame[~early]
            _check_scope(spec, frame, first_day, end_exclusive, coin_ids)
            if len(frame):
                _copy_in(conn, spec, frame, target)
                written, tail = written + len(frame), frame.tail(tail_rows)
        merged = DayWrite(replaced=replaced)
        if target != spec.name:
            merged = _merge_staged(conn, spec, target, scope, params)
        return replace(merged, inserted_before=inserted, written=written, tail=tail)


def _scope(
    spec: TableSpec, first_day: date, end_exclusive: date, coin_ids: Sequence[int] | None
) -> tuple[sql.Composable, list[object]]:
    """The WHERE clause (and its parameters) of the stored rows a write of days replaces."""
    scope = sql.SQL("{} >= %s AND {} < %s").format(
        sql.Identifier(spec.date_column), sql.Identifier(spec.date_column)
    )
    params: list[object] = [first_day, end_exclusive]
    if coin_ids is not None:
        scope += sql.SQL(" AND {} = ANY(%s)").format(sql.Identifier(spec.coin_column))
        params.append(list(coin_ids))
    return scope, params


def _delete(
    conn: psycopg.Connection, spec: TableSpec, scope: sql.Composable, params: list[object]
) -> int:
    table = sql.Identifier(spec.name)
    return conn.execute(sql.SQL("DELETE FROM {} WHERE ").format(table) + scope, params).rowcount


def _has_rows(
    conn: psycopg.Connection, spec: TableSpec, scope: sql.Composable, params: list[object]
) -> bool:
    table = sql.Identifier(spec.name)
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE ").format(table) + scope
    row = conn.execute(query + sql.SQL(")"), params).fetchone()
    return bool(row and row[0])


def _check_before(
    spec: TableSpec, before: pd.DataFrame, first_day: date, coin_ids: Sequence[int] | None
) -> None:
    assert spec.date_column is not None
    if coin_ids is None:
        raise ValueError(f"{spec.name}: rows before the run's days need the run's coins")
    late = before[before[spec.date_column] >= pd.Timestamp(first_day)]
    if len(late):
        raise ValueError(
            f"{spec.name}: a lookback row dated {late[spec.date_column].min():%Y-%m-%d} is not "
            f"before the partitions being written (from {first_day})"
        )
    if not before[spec.coin_column].isin(coin_ids).all():
        raise ValueError(f"{spec.name}: lookback rows of coins outside the run's universe")


def _insert_absent(conn: psycopg.Connection, spec: TableSpec, frame: pd.DataFrame) -> int:
    """Insert the rows whose key is not stored yet; stored rows stay as they are."""
    return _insert_by_key(conn, spec, frame, sql.SQL("DO NOTHING"))


def _insert_by_key(
    conn: psycopg.Connection, spec: TableSpec, frame: pd.DataFrame, on_conflict: sql.Composable
) -> int:
    """COPY ``frame`` into a staging table and insert it, ``on_conflict`` deciding what happens
    to a row whose primary key is stored; the rows inserted or updated."""
    staging = _staging(conn, spec)
    _copy_in(conn, spec, frame, staging)
    columns = sql.SQL(", ").join(map(sql.Identifier, spec.columns))
    return conn.execute(
        sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "
            "ON CONFLICT ({key}) {on_conflict}"
        ).format(
            table=sql.Identifier(spec.name),
            columns=columns,
            staging=sql.Identifier(staging),
            key=sql.SQL(", ").join(map(sql.Identifier, spec.primary_key)),
            on_conflict=on_conflict,
        )
    ).rowcount


def _merge_staged(
    conn: psycopg.Connection,
    spec: TableSpec,
    staging: str,
    scope: sql.Composable,
    params: list[object],
) -> DayWrite:
    """Merge the staged fetched rows: each replaces its stored twin (counting the revised ones);
    stored rows of the scope without a staged twin are kept, and counted."""
    table, staged = sql.Identifier(spec.name), sql.Identifier(staging)
    same_key = sql.SQL(" AND ").join(
        sql.SQL("s.{0} = t.{0}").format(sql.Identifier(c)) for c in spec.primary_key
    )
    revised = _count_revised(conn, spec, staged, same_key)
    replaced = conn.execute(
        sql.SQL("DELETE FROM {} t USING {} s WHERE {}").format(table, staged, same_key)
    ).rowcount
    columns = sql.SQL(", ").join(map(sql.Identifier, spec.columns))
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(table, columns, columns, staged)
    )
    kept = conn.execute(
        sql.SQL("SELECT count(*) FROM {} t WHERE ").format(table)
        + scope
        + sql.SQL(" AND NOT EXISTS (SELECT 1 FROM {} s WHERE {})").format(staged, same_key),
        params,
    ).fetchone()[0]
    return DayWrite(replaced=replaced, revised=revised, kept=kept)


def _check_scope(
    spec: TableSpec,
    frame: pd.DataFrame,
    first_day: date,
    end_exclusive: date,
    coin_ids: Sequence[int] | None,
) -> None:
    assert spec.date_column is not None
    days = frame[spec.date_column]
    outside = frame[(days < pd.Timestamp(first_day)) | (days >= pd.Timestamp(end_exclusive))]
    if len(outside):
        raise ValueError(
            f"{spec.name}: rows dated {outside[spec.date_column].min():%Y-%m-%d} are outside "
            f"the partitions being written ({first_day}..{end_exclusive}, end exclusive)"
        )
    if coin_ids is not None and not frame[spec.coin_column].isin(coin_ids).all():
        raise ValueError(f"{spec.name}: rows of coins outside the run's universe")


def _staging(conn: psycopg.Connection, spec: TableSpec) -> str:
    """A temporary copy of the table's structure, with a name of its own, dropped at commit."""
    staging = f"{spec.name}_staging_{uuid.uuid4().hex[:12]}"
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
            sql.Identifier(staging), sql.Identifier(spec.name)
        )
    )
    return staging


def _count_revised(
    conn: psycopg.Connection, spec: TableSpec, staged: sql.Identifier, same_key: sql.Composable
) -> int:
    """Staged rows whose stored twin has different values."""
    values = [sql.Identifier(c) for c in spec.revision_columns]
    query = sql.SQL(
        "SELECT count(*) FROM {staged} s JOIN {table} t ON {same_key} "
        "WHERE ({new}) IS DISTINCT FROM ({old})"
    ).format(
        staged=staged,
        table=sql.Identifier(spec.name),
        same_key=same_key,
        new=sql.SQL(", ").join(sql.SQL("s.{}").format(v) for v in values),
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(v) for v in values),
    )
    return conn.execute(query).fetchone()[0]


def upsert(conn: psycopg.Connection, spec: TableSpec, frame: pd.DataFrame) -> None:
    """Insert or update ``frame`` by primary key in one transaction; other rows stay."""
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in spec.columns
        if c not in spec.primary_key
    )
    with conn.transaction():
        _lock(conn, spec)
        _insert_by_key(conn, spec, frame, sql.SQL("DO UPDATE SET {}").format(updates))


def read_rows(
    conn: psycopg.Connection,
    spec: TableSpec,
    first_day: date | None = None,
    end_exclusive: date | None = None,
    columns: Sequence[str] | None = None,
    coin_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The table's rows by primary key; only those from first_day up to end_exclusive if given,
    of ``coin_ids`` if given, and only ``columns`` if given (the server sends nothing else)."""
    conditions: list[sql.Composable] = []
    if first_day is not None and end_exclusive is not None and spec.date_column:
        conditions.append(
            sql.SQL("{column} >= {first} AND {column} < {end}").format(
                column=sql.Identifier(spec.date_column),
                first=sql.Literal(first_day),
                end=sql.Literal(end_exclusive),
            )
        )
    if coin_ids is not None:
        conditions.append(
            sql.SQL("{} = ANY({})").format(
                sql.Identifier(spec.coin_column), sql.Literal(list(coin_ids))
            )
        )
    if columns is not None:
        spec = spec.only(columns)
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, spec.columns)), sql.Identifier(spec.name)
    )
    if conditions:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
    query += sql.SQL(" ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, spec.primary_key))
    )
    buffer = io.BytesIO()
    with conn.cursor().copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)) as copy:
        for chunk in copy:
            buffer.write(chunk)
    return _parse(spec, buffer.getvalue())


def coin_ids_in_window(
    conn: psycopg.Connection, spec: TableSpec, first_day: date, end_exclusive: date
) -> list[int]:
    """The coins with a row dated from first_day up to end_exclusive, by id: one index probe
    per coin along the primary key (coin, day), not a scan of the window's rows."""
    query = sql.SQL(
        """
        WITH RECURSIVE coins (id) AS (
            (SELECT {coin} FROM {table} WHERE {coin} > -1 AND {day} >= %(first)s
                AND {day} < %(end)s ORDER BY {coin} LIMIT 1)
            UNION ALL
            SELECT (SELECT {coin} FROM {table} WHERE {coin} > coins.id AND {day} >= %(first)s
                AND {day} < %(end)s ORDER BY {coin} LIMIT 1)
            FROM coins WHERE coins.id IS NOT NULL
        )
        SELECT id FROM coins WHERE id IS NOT NULL
        """
    ).format(
        coin=sql.Identifier(spec.coin_column),
        day=sql.Identifier(spec.date_column),
        table=sql.Identifier(spec.name),
    )
    rows = conn.execute(query, {"first": first_day, "end": end_exclusive}).fetchall()
    return [coin_id for (coin_id,) in rows]


def _parse(spec: TableSpec, payload: bytes) -> pd.DataFrame:
    """COPY's CSV output as a frame of the spec's types, parsed by Arrow (about twice as fast as
    ``pandas.read_csv``; its float parsing is correctly rounded, so values come back exactly)."""
    schema = pa.schema([(c, _ARROW_TYPES[t]) for c, t in spec.types.items()])
    if payload:
        rows = pa_csv.read_csv(
            io.BytesIO(payload),
            read_options=pa_csv.ReadOptions(column_names=schema.names),
            convert_options=pa_csv.ConvertOptions(
                column_types=schema,
                # COPY writes NULL as an empty field and quotes every empty string.
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                timestamp_parsers=[pa_csv.ISO8601],
                true_values=["t"],  # COPY's booleans
                false_values=["f"],
            ),
        )
    else:
        rows = schema.empty_table()
    frame = rows.to_pandas(date_as_object=False)
    for column, kind in spec.types.items():
        if kind in (NULLABLE_INT, BOOL):  # Arrow hands these to pandas as floats or objects
            frame[column] = pd.array(rows[column].to_pylist(), dtype=kind)
    return frame


# currency_status's names of each coin, and the ticker of each stored coin's newest candle (with
# its currency_status slug, if any): this names coins that currency_status lacks, or knew by an
# older ticker. The stored coins are found by walking the primary key (one probe per coin), as
# latest_market does.
_COIN_NAMES = """
    WITH RECURSIVE stored (coin_id) AS (
        (SELECT coin_id FROM historical_trade_data ORDER BY coin_id LIMIT 1)
        UNION ALL
        SELECT (
            SELECT h.coin_id FROM historical_trade_data h
            WHERE h.coin_id > s.coin_id ORDER BY h.coin_id LIMIT 1
        )
        FROM stored s
        WHERE s.coin_id IS NOT NULL
    )
    SELECT coin_id, ticker, slug FROM currency_status
    UNION
    SELECT s.coin_id, newest.ticker, m.slug
    FROM stored s
    CROSS JOIN LATERAL (
        SELECT h.ticker FROM historical_trade_data h
        WHERE h.coin_id = s.coin_id ORDER BY h.trade_date DESC LIMIT 1
    ) newest
    LEFT JOIN currency_status m ON m.coin_id = s.coin_id
    ORDER BY coin_id, ticker
"""


def coin_names(conn: psycopg.Connection) -> pd.DataFrame:
    """The current names of the coins, one row per name (``coin_id``, ``ticker``, ``slug``):
    currency_status's, and each stored coin's newest candle ticker; slug NULL where unknown."""
    rows = conn.execute(_COIN_NAMES).fetchall()
    return pd.DataFrame(rows, columns=["coin_id", "ticker", "slug"]).astype(
        {"coin_id": "int64", "ticker": TEXT, "slug": TEXT}
    )
