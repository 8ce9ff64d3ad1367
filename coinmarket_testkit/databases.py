"""Throwaway databases on a test or benchmark PostgreSQL server."""

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


def database_url_for(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, closing its connections first."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
