"""The table description (storage/tables.py) against what the migrations create."""

import psycopg

from coinmarket_assets.storage.tables import SQL_TYPES, STATE_TABLES, TABLES


def _columns(conn: psycopg.Connection, table: str) -> list[tuple[str, str, bool]]:
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [tuple(row) for row in rows]


def _constraints(conn: psycopg.Connection, table: str) -> tuple[list[str], list[str]]:
    """The primary key's columns in key order, and the CHECK constraints' definitions."""
    key = conn.execute(
        "SELECT a.attname FROM pg_constraint c "
        "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k (attnum, position) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
        "WHERE c.conrelid = to_regclass(%s) AND c.contype = 'p' ORDER BY k.position",
        [table],
    ).fetchall()
    checks = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype = 'c' ORDER BY conname",
        [table],
    ).fetchall()
    return [name for (name,) in key], [definition for (definition,) in checks]


def test_the_table_description_is_what_the_migrations_create(template_url: str):
    with psycopg.connect(template_url) as conn:
        created = {
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' "
                "AND table_name NOT LIKE %s AND table_name <> 'yoyo_lock'",
                ["\\_yoyo%"],
            )
        }
        assert created == set(TABLES) | set(STATE_TABLES)
        for name, spec in (TABLES | STATE_TABLES).items():
            described = [(c.name, SQL_TYPES[c.type], c.nullable) for c in spec.column_defs]
            assert _columns(conn, name) == described, name
            key, checks = _constraints(conn, name)
            assert key == list(spec.primary_key), name
            assert checks == [f"CHECK (({check}))" for check in spec.checks], name
