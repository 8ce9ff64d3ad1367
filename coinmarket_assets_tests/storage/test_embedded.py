import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from coinmarket_assets.storage.embedded import HOLDERS_FILE, EmbeddedPostgres, release_holder
from coinmarket_assets_tests.launcher import server_folder, wait_until


@pytest.fixture
def folder() -> Iterator[Path]:
    with server_folder() as path:
        yield path


def test_the_embedded_server_starts_creates_the_database_and_stops(folder: Path):
    server = EmbeddedPostgres(folder / "pg")
    url = server.start("coinmarket")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("coinmarket",)
    assert server.stop()
    assert not (folder / "pg" / "postmaster.pid").exists()


def test_a_holder_that_died_without_releasing_does_not_keep_the_server_running(folder: Path):
    server = EmbeddedPostgres(folder / "pg")
    server.start()
    dead = subprocess.Popen(["true"])
    dead.wait()
    holders = folder / "pg" / HOLDERS_FILE
    holders.write_text(json.dumps([dead.pid, *json.loads(holders.read_text())]))
    assert server.stop()


def _add_holder(data_dir: Path, pid: int) -> None:
    holders = data_dir / HOLDERS_FILE
    holders.write_text(json.dumps([pid, *json.loads(holders.read_text())]))


def test_a_holder_that_died_but_is_not_reaped_yet_does_not_keep_the_server_running(
    folder: Path,
):
    server = EmbeddedPostgres(folder / "pg")
    server.start()
    zombie = subprocess.Popen(["true"])  # dead once it exits, until wait() reaps it
    wait_until(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE, 10, "a zombie")
    _add_holder(folder / "pg", zombie.pid)
    assert server.stop()
    zombie.wait()


def test_releasing_a_gone_holder_stops_the_server_only_when_no_live_holder_remains(
    folder: Path,
):
    data_dir = folder / "pg"
    server = EmbeddedPostgres(data_dir)
    server.start()
    other = subprocess.Popen(["sleep", "60"])
    try:
        _add_holder(data_dir, other.pid)
        assert not release_holder(data_dir, os.getpid())
        assert (data_dir / "postmaster.pid").exists()
    finally:
        other.kill()
        other.wait()
    assert release_holder(data_dir, os.getpid())
    assert not (data_dir / "postmaster.pid").exists()
    assert json.loads((data_dir / HOLDERS_FILE).read_text()) == []
