"""Schema migrations: the Flyway-style SQL files under ``sql/``, applied with yoyo-migrations."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from yoyo import get_backend, read_migrations
from yoyo.backends.base import DatabaseBackend
from yoyo.migrations import MigrationList

from coinmarket_assets.storage.database import database_url, with_driver

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "sql"


class SchemaNotCurrentError(RuntimeError):
    """The database lacks migrations that this version of the pipeline needs."""


def _migrations() -> MigrationList:
    migrations = read_migrations(str(MIGRATIONS_DIR))
    if not migrations:
        # yoyo reads a missing folder as "no migrations"; that must not pass as a current schema.
        raise FileNotFoundError(
            f"No migrations found in {MIGRATIONS_DIR}; install the project from its checkout "
            "(pip install -e .) so that sql/ is next to the package."
        )
    return migrations


@contextmanager
def _backend(url: str | None) -> Iterator[DatabaseBackend]:
    backend = get_backend(with_driver(url or database_url(), "psycopg"))
    try:
        yield backend
    finally:
        backend.connection.close()


def apply_migrations(url: str | None = None) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return their ids.

    A lock table makes concurrent callers wait for each other; a second run changes nothing.
    A current schema is only read, so a role without DDL rights may call this too.
    """
    migrations = _migrations()
    with _backend(url) as backend:
        if not backend.to_apply(migrations):
            return []
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    return [migration.id for migration in pending]


def pending_migrations(url: str | None = None) -> list[str]:
    """The ids of migrations not yet applied to the database."""
    with _backend(url) as backend:
        return [migration.id for migration in backend.to_apply(_migrations())]


def ensure_schema_current(url: str | None = None) -> None:
    """Fail with a clear message when the database schema is behind this code."""
    pending = pending_migrations(url)
    if pending:
        raise SchemaNotCurrentError(
            f"The database schema is not current: pending migrations {', '.join(pending)}. "
            "Run `coinmarket migrate` first."
        )
