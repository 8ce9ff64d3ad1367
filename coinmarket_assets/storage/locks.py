"""Named locks held by a database session, so that a killed holder never keeps them.

A PostgreSQL session advisory lock lives as long as its connection: when the process holding
it dies, however it dies, the server drops the connection and the lock with it. Dagster
concurrency slots, by contrast, stay taken until someone marks the dead run finished.
"""

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from coinmarket_assets.storage.database import connect

# Two-key advisory locks live in their own key space, apart from the one-key transaction
# locks the table writes take; the first key marks them as this project's.
LOCK_NAMESPACE = 0x434D  # "CM"
APPLICATION_NAME_MAX = 63


def lock_key(name: str) -> int:
    """A stable positive 32-bit key for ``name``."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class LockLostError(ConnectionError):
    """The session holding a lock ended (say, the database restarted): the lock is gone."""


class SessionLock:
    """An exclusive lock named ``name``, held by its own connection until released."""

    def __init__(self, url: str, name: str, holder: str) -> None:
        self.name = name
        self._key = lock_key(name)
        self._conn = connect(
            url,
            autocommit=True,
            application_name=f"coinmarket {name}: {holder}"[:APPLICATION_NAME_MAX],
        )

    def acquire(self, log: logging.Logger | None = None) -> None:
        """Take the lock, waiting for its holder to release it (or to die)."""
        taken = self._conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, self._key]
        ).fetchone()
        if taken is not None and taken[0]:
            return
        if log is not None:
            log.info(f"Waiting for lock {self.name!r}, held by {self._holders()}")
        self._conn.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, self._key])

    def is_held(self) -> bool:
        """Whether the lock's session is still alive (and so still holds it)."""
        if self._conn.closed or self._conn.broken:
            return False
        import psycopg  # imported by ``connect`` already; not with this module (start-up)

        try:
            self._conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def release(self) -> None:
        """Release the lock by closing its connection (a lost connection has released it)."""
        self._conn.close()

    def _holders(self) -> str:
        rows = self._conn.execute(
            "SELECT a.application_name, a.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
            "AND l.objsubid = 2",
            [LOCK_NAMESPACE, self._key],
        ).fetchall()
        return ", ".join(f"{name} (pid {pid})" for name, pid in rows) or "a session that ended"


@contextmanager
def session_lock(
    url: str, name: str, holder: str, log: logging.Logger | None = None
) -> Iterator[None]:
    """Hold lock ``name`` for the duration of the block; ``holder`` is shown to waiters."""
    lock = SessionLock(url, name, holder)
    try:
        lock.acquire(log)
        yield
    finally:
        lock.release()


def is_locked(url: str, name: str) -> bool:
    """Whether any session holds lock ``name`` now."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objid = %s AND objsubid = 2",
            [LOCK_NAMESPACE, lock_key(name)],
        ).fetchone()
    return bool(row and row[0])
