"""``coinmarket backup`` and ``restore`` as real processes: a failed backup keeps the previous
one, a bad file restores nothing, and the password never shows on a command line."""

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from coinmarket_assets.storage.backup import _tool, split_password
from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets.storage.embedded import EmbeddedPostgres, create_database
from coinmarket_assets.storage.migrations import apply_migrations
from coinmarket_assets_tests.launcher import (
    COINMARKET,
    PROJECT,
    launcher_env,
    run_launcher,
    server_folder,
    still_running,
    wait_for_descendant,
    wait_until,
)
from coinmarket_testkit.databases import database_url_for

UNREACHABLE = "postgresql://coinmarket:s3cret@127.0.0.1:9/coinmarket"  # nothing listens on 9
# Every character that means something in a URL, and one that libpq's query parsing keeps.
PASSWORD = "p@ss:w/rd %+?&=#x"
ROLE = "cm_backup_secret"


def _insert_rows(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO currency_status (coin_id, ticker, coin_name, slug, rank) "
            "SELECT n, 'T' || n, 'Coin ' || n, 'coin-' || n, n FROM generate_series(1, 50) n"
        )
        conn.execute(
            "INSERT INTO historical_trade_data SELECT 1, 'T1', d::date, 1, 2, 0.5, 1.5, 10, 100 "
            "FROM generate_series('2020-01-01'::date, '2020-12-31', '1 day') d"
        )


def _contents(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
            for table in ("currency_status", "historical_trade_data", "_yoyo_migration")
        ]


def _backup(file: Path, env: dict[str, str]) -> None:
    saved = run_launcher([COINMARKET, "backup", str(file)], env)
    assert saved.returncode == 0, saved.stderr


def test_a_failed_backup_leaves_the_previous_one_byte_for_byte_and_no_temporary_file(
    database_url: str, tmp_path: Path
):
    _insert_rows(database_url)
    folder = tmp_path / "backups"
    folder.mkdir()
    file = folder / "coinmarket.dump"
    _backup(file, launcher_env(tmp_path))
    previous = file.read_bytes()
    failed = run_launcher(
        [COINMARKET, "backup", str(file)], launcher_env(tmp_path, **{DATABASE_URL_ENV: UNREACHABLE})
    )
    assert file.read_bytes() == previous
    assert list(folder.iterdir()) == [file]
    assert failed.returncode == 1
    assert "coinmarket: error: backup to" in failed.stderr and "s3cret" not in failed.stderr


def test_a_stop_during_a_backup_keeps_the_previous_one_and_leaves_no_pg_dump(
    database_url: str, tmp_path: Path
):
    _insert_rows(database_url)
    file = tmp_path / "coinmarket.dump"
    file.write_bytes(b"the previous backup")
    env = launcher_env(tmp_path)
    with psycopg.connect(database_url) as blocker:
        # pg_dump waits for this lock: the signal comes while it runs.
        blocker.execute("LOCK TABLE currency_status IN ACCESS EXCLUSIVE MODE")
        launcher = subprocess.Popen(
            [COINMARKET, "backup", str(file)], env=env, cwd=PROJECT, stderr=subprocess.PIPE
        )
        pg_dump = wait_for_descendant(psutil.Process(launcher.pid), "pg_dump")
        launcher.send_signal(signal.SIGHUP)
        assert launcher.wait(timeout=60) != 0
        wait_until(lambda: not still_running([pg_dump]), 10, "pg_dump to end")
    launcher.stderr.close()
    assert file.read_bytes() == b"the previous backup"
    assert sorted(tmp_path.iterdir()) == sorted([file, tmp_path / "home"])


def _bad_files(complete: bytes, tmp_path: Path, empty_database_url: str) -> dict[str, bytes]:
    other = tmp_path / "other.dump"  # a complete pg_dump archive, of a database without tables
    subprocess.run(
        [_tool("pg_dump"), "--format=custom", f"--file={other}", f"--dbname={empty_database_url}"],
        check=True,
    )
    return {
        "truncated": complete[: len(complete) // 2],
        "last byte missing": complete[:-1],
        "empty": b"",
        "garbage": b"PGDMP" + bytes(range(256)) * 8,
        "another database": other.read_bytes(),
    }


def test_restore_of_a_bad_file_changes_nothing_and_says_why_in_one_line(
    database_url: str, empty_database_url: str, tmp_path: Path
):
    _insert_rows(database_url)
    env = launcher_env(tmp_path)
    file = tmp_path / "coinmarket.dump"
    _backup(file, env)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM historical_trade_data WHERE trade_date > '2020-06-30'")
        conn.execute("UPDATE currency_status SET rank = 0")
    before = _contents(database_url)
    for name, content in _bad_files(file.read_bytes(), tmp_path, empty_database_url).items():
        bad = tmp_path / f"{name}.dump"
        bad.write_bytes(content)
        result = run_launcher([COINMARKET, "restore", str(bad)], env)
        assert result.returncode == 1, name
        assert "Traceback" not in result.stderr, name
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and errors[0].startswith(f"coinmarket: error: {bad} "), errors
        assert _contents(database_url) == before, name


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql://u:p%40ss%2Fw%3Ard@h:5432/db", "p@ss/w:rd"),
        # libpq reads a password= parameter after the user information, and keeps '+' as is.
        ("postgresql://u:first@h/db?password=a+b%26c&sslmode=disable", "a+b&c"),
        ("postgresql://u@/db?host=/run/pg", None),
        ("postgresql://postgres:@/db?host=/run/pg", None),
    ],
)
def test_the_password_is_split_from_the_url_as_libpq_reads_it(url: str, password: str | None):
    conninfo, found = split_password(url)
    assert found == password
    assert "password" not in conninfo and "first" not in conninfo
    without_password = {k: v for k, v in conninfo_to_dict(url).items() if k != "password"}
    assert conninfo_to_dict(conninfo) == without_password


@pytest.fixture(scope="module")
def password_server() -> Iterator[tuple[str, str]]:
    """A server of this module's own where ROLE must give PASSWORD; (admin URL, socket dir)."""
    with server_folder() as folder:
        server = EmbeddedPostgres(folder / "pg", delete_on_stop=True)
        yield from _with_password_role(server.start("postgres"))
        server.stop()


def _with_password_role(admin: str) -> Iterator[tuple[str, str]]:
    with psycopg.connect(admin, autocommit=True) as conn:
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        hba.write_text(f"local all {ROLE} scram-sha-256\n" + hba.read_text())
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(PASSWORD)
            )
        )
        conn.execute("SELECT pg_reload_conf()")
        socket_dir = conn.execute("SHOW unix_socket_directories").fetchone()[0]
    yield admin, socket_dir


def _blocked_tool_argv(admin_url: str, args: list[str], env: dict[str, str], tool: str) -> list:
    """The command line of ``tool`` while the launcher runs it, blocked on a lock it waits for
    once it has logged in; then the lock is released and the launcher must succeed."""
    with psycopg.connect(admin_url) as blocker:
        blocker.execute("LOCK TABLE currency_status IN ACCESS EXCLUSIVE MODE")
        launcher = subprocess.Popen(
            [COINMARKET, *args], env=env, cwd=PROJECT, stderr=subprocess.PIPE, text=True
        )
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND application_name = %s "
            "AND wait_event_type = 'Lock'"
        )
        with psycopg.connect(admin_url, autocommit=True) as watcher:
            wait_until(
                lambda: watcher.execute(waiting, [ROLE, tool]).fetchone()[0] == 1,
                60,
                f"{tool} to log in as {ROLE} and wait for the lock",
            )
        argv = next(
            process.cmdline()
            for process in psutil.Process(launcher.pid).children(recursive=True)
            if process.name() == tool and any("--dbname" in arg for arg in process.cmdline())
        )
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode == 0, stderr
    return argv


@pytest.mark.parametrize("where", ["user information", "query"])
def test_backup_and_restore_log_in_with_a_password_that_no_command_line_shows(
    password_server: tuple[str, str], tmp_path: Path, where: str
):
    admin, socket_dir = password_server
    database = f"cm_pw_{where.replace(' ', '_')}"
    create_database(admin, database)
    migrated = database_url_for(admin, database)
    apply_migrations(migrated)
    _insert_rows(migrated)
    encoded = quote(PASSWORD, safe="")
    url = (
        f"postgresql://{ROLE}:{encoded}@/{database}?host={quote(socket_dir, safe='')}"
        if where == "user information"
        else f"postgresql://{ROLE}@/{database}?host={quote(socket_dir, safe='')}&password={encoded}"
    )
    env = launcher_env(tmp_path, **{DATABASE_URL_ENV: url})
    file = tmp_path / "coinmarket.dump"
    shown = [*_blocked_tool_argv(migrated, ["backup", str(file)], env, "pg_dump")]
    expected = _contents(migrated)
    with psycopg.connect(migrated) as conn:
        conn.execute("DELETE FROM historical_trade_data")
    shown += _blocked_tool_argv(migrated, ["restore", str(file)], env, "pg_restore")
    assert _contents(migrated) == expected
    command_lines = " ".join(shown)
    for secret in (PASSWORD, encoded, "p@ss", "p%40ss"):
        assert secret not in command_lines
