"""Throwaway PostgreSQL servers and databases for the tests and the benchmarks."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from coinmarket_assets.storage.embedded import EmbeddedPostgres
from coinmarket_assets.watchdog import Watchdog


def database_url_for(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, closing its connections first."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """An embedded PostgreSQL for the block, yielding its administrative URL.

    It ends with this process however the process ends: the launcher's watchdog stops it when
    the process dies without stopping it (SIGKILL, a killed pytest or benchmark).
    """
    watchdog = Watchdog()
    watchdog.guard_server(data_dir)
    server = EmbeddedPostgres(data_dir, delete_on_stop=True)
    try:
        yield server.start("postgres")
    finally:
        server.stop()
        watchdog.forget_server(data_dir)
        watchdog.close()
