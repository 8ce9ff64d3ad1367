"""The ``coinmarket`` launcher and Dagster's own CLI, run as subprocesses on a real database."""

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.dagster_runs import (
    PARTITIONED_ASSETS,
    dump_all,
    materialize_days,
    materialize_unpartitioned,
)
from coinmarket_assets_tests.launcher import BIN, PROJECT
from coinmarket_assets_tests.launcher import launcher_env as _env
from coinmarket_assets_tests.launcher import run_launcher as _run

ASSET_KEYS = {"currency_status", *PARTITIONED_ASSETS, "ranked_coin_chart"}


def _count(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


def test_migrate_applies_pending_migrations_once(empty_database_url: str, tmp_path: Path):
    env = _env(tmp_path, **{DATABASE_URL_ENV: empty_database_url})
    first = _run([str(BIN / "coinmarket"), "migrate"], env)
    assert first.returncode == 0, first.stderr
    assert "applied migrations V0001__coin_market" in first.stderr
    second = _run([str(BIN / "coinmarket"), "migrate"], env)
    assert "schema is current" in second.stderr


@pytest.mark.slow
def test_exec_materializes_a_partition_range_in_one_run_with_dagster_in_its_own_schema(
    database_url: str, csv_source: Path, tmp_path: Path
):
    command = [
        str(BIN / "coinmarket"),
        "exec",
        "--",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "coinmarket_assets.definitions",
        "--select",
        ",".join(PARTITIONED_ASSETS),
        "--partition-range",
        "2020-01-01...2020-03-31",
    ]
    result = _run(command, _env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert _count(database_url, "SELECT count(*) FROM dagster.runs") == 1
    assert _count(database_url, "SELECT count(DISTINCT trade_date) FROM historical_rolling") == 91
    public_tables = _count(
        database_url,
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_name IN ('runs', 'event_logs')",
    )
    assert public_tables == 0


@pytest.mark.slow
def test_plain_dagster_cli_works_with_a_copy_of_the_project_dagster_yaml(
    database_url: str, csv_source: Path, tmp_path: Path
):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = _env(tmp_path, DAGSTER_HOME=str(dagster_home))
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "coinmarket_assets.definitions"]
    result = _run([*command, "--select", "currency_status"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _count(database_url, "SELECT count(*) FROM currency_status") == 5


def test_exec_starts_and_stops_the_embedded_database_when_no_url_is_set(tmp_path: Path):
    env = _env(tmp_path)
    env.pop(DATABASE_URL_ENV, None)
    probe = "import os, psycopg; psycopg.connect(os.environ['COINMARKET_DATABASE_URL']).close()"
    result = _run([str(BIN / "coinmarket"), "exec", "--", "python", "-c", probe], env)
    assert result.returncode == 0, result.stderr
    assert "embedded PostgreSQL running" in result.stderr
    assert "embedded PostgreSQL stopped" in result.stderr
    assert not (tmp_path / "home" / "postgres" / "postmaster.pid").exists()


def test_exec_passes_on_the_commands_exit_code(tmp_path: Path, database_url: str):
    result = _run(
        [str(BIN / "coinmarket"), "exec", "--", "python", "-c", "exit(3)"], _env(tmp_path)
    )
    assert result.returncode == 3


@pytest.mark.parametrize(
    ("program", "code", "reason"),
    [
        ("no-such-command-here", 127, "command not found"),
        ("{tmp}/missing/tool", 127, "No such file or directory"),
        ("{tmp}/not-executable", 126, "Permission denied"),
    ],
)
def test_exec_of_a_command_that_cannot_start_fails_in_one_line_with_the_shells_code(
    tmp_path: Path, database_url: str, program: str, code: int, reason: str
):
    (tmp_path / "not-executable").write_text("#!/bin/sh\necho hello\n")
    program = program.format(tmp=tmp_path)
    result = _run([str(BIN / "coinmarket"), "exec", "--", program, "--flag"], _env(tmp_path))
    assert result.returncode == code, result.stderr
    error = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert error == [f"coinmarket: error: {program}: {reason}"]
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _asset_keys(port: int) -> set[str]:
    query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=query,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        nodes = json.load(response)["data"]["assetNodes"]
    return {"/".join(node["assetKey"]["path"]) for node in nodes}


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_dev_serves_the_ui_with_every_asset_and_stops_everything_on_sigint(tmp_path: Path):
    env = _env(tmp_path)
    env.pop(DATABASE_URL_ENV, None)
    port = _free_port()
    launcher = subprocess.Popen(
        [str(BIN / "coinmarket"), "dev", "--port", str(port)],
        env=env,
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        keys: set[str] = set()
        while time.monotonic() < deadline and launcher.poll() is None:
            try:
                keys = _asset_keys(port)
                break
            except (OSError, KeyError, ValueError):
                time.sleep(1)
        assert keys == ASSET_KEYS
    finally:
        launcher.send_signal(signal.SIGINT)  # to the launcher alone, not its process group
        launcher.wait(timeout=120)
    assert not _port_open(port)
    assert not (tmp_path / "home" / "postgres" / "postmaster.pid").exists()


def test_sigterm_stops_the_command_and_the_embedded_database_even_as_a_background_job(
    tmp_path: Path,
):
    env = _env(tmp_path)
    env.pop(DATABASE_URL_ENV, None)
    command = [
        "exec",
        "--",
        "python",
        "-c",
        "print('ready', flush=True); import time; time.sleep(120)",
    ]
    launcher = subprocess.Popen(
        [str(BIN / "coinmarket"), *command],
        env=env,
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # As a shell starts background jobs: SIGINT ignored, which children would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert launcher.stdout.readline().strip() == "ready"
    started = time.monotonic()
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=60) != 0
    assert time.monotonic() - started < 30
    assert not (tmp_path / "home" / "postgres" / "postmaster.pid").exists()


def test_backup_and_restore_round_trip_the_data_tables(
    database_url: str, csv_source: Path, tmp_path: Path
):
    materialize_unpartitioned(["currency_status"])
    materialize_days("2020-01-01", "2020-02-29")
    before = dump_all(database_url)
    env = _env(tmp_path)
    file = tmp_path / "coinmarket.dump"
    saved = _run([str(BIN / "coinmarket"), "backup", str(file)], env)
    assert saved.returncode == 0, saved.stderr
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM historical_trade_data WHERE trade_date > '2020-01-15'")
        conn.execute("UPDATE top_ranking SET period_return = 0")
    restored = _run([str(BIN / "coinmarket"), "restore", str(file)], env)
    assert restored.returncode == 0, restored.stderr
    assert dump_all(database_url) == before


def test_restore_of_a_missing_file_fails_clearly(database_url: str, tmp_path: Path):
    result = _run([str(BIN / "coinmarket"), "restore", str(tmp_path / "nope.dump")], _env(tmp_path))
    assert result.returncode == 1
    assert "coinmarket: error: " in result.stderr and "nope.dump does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_fails_fast_without_showing_its_password(tmp_path: Path):
    url = "postgresql://coinmarket:s3cret@127.0.0.1:9/coinmarket"  # nothing listens on port 9
    started = time.monotonic()
    result = _run([str(BIN / "coinmarket"), "migrate"], _env(tmp_path, **{DATABASE_URL_ENV: url}))
    assert result.returncode == 1
    assert time.monotonic() - started < 30
    assert "s3cret" not in result.stderr
    assert "coinmarket: error: " in result.stderr
