"""The floor every write is compared with: a bare COPY of already serialised rows into an empty
table identical to the real one (same columns, primary key and indexes)."""

import psycopg
from psycopg import sql

from benchmarks.common import timed

FLOOR_SCHEMA = "bench_floor"


def dump_csv(url: str, table: str) -> bytes:
    """The stored rows of ``table`` as CSV, the format the IO manager sends to COPY."""
    chunks = []
    with (
        psycopg.connect(url) as conn,
        conn.cursor().copy(
            sql.SQL("COPY {} TO STDOUT (FORMAT csv)").format(sql.Identifier(table))
        ) as copy,
    ):
        chunks.extend(bytes(chunk) for chunk in copy)
    return b"".join(chunks)


def create_floor_table(url: str, table: str) -> None:
    """An empty ``bench_floor.<table>`` like the real one, indexes and constraints included."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(FLOOR_SCHEMA)))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(FLOOR_SCHEMA, table)))
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                sql.Identifier(FLOOR_SCHEMA, table), sql.Identifier("public", table)
            )
        )


def truncate(url: str, schema: str, table: str) -> None:
    """Empty the table and write out dirty pages, so that the next timing starts clean."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(schema, table)))
        conn.execute("CHECKPOINT")


def checkpoint(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def bare_copy(url: str, table: str, payload: bytes) -> float:
    """Seconds to COPY ``payload`` into ``bench_floor.<table>`` and commit."""
    with psycopg.connect(url) as conn:
        target = sql.Identifier(FLOOR_SCHEMA, table)
        statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(target)

        def copy() -> None:
            with conn.transaction(), conn.cursor().copy(statement) as writer:
                writer.write(payload)

        return timed(copy)


def drop_floor(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(FLOOR_SCHEMA))
        )
