import json
import subprocess
from pathlib import Path

import psycopg

from coinmarket_assets.storage.embedded import HOLDERS_FILE, EmbeddedPostgres


def test_the_embedded_server_starts_creates_the_database_and_stops(tmp_path: Path):
    server = EmbeddedPostgres(tmp_path / "pg")
    url = server.start("coinmarket")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("coinmarket",)
    assert server.stop()
    assert not (tmp_path / "pg" / "postmaster.pid").exists()


def test_a_holder_that_died_without_releasing_does_not_keep_the_server_running(tmp_path: Path):
    server = EmbeddedPostgres(tmp_path / "pg")
    server.start()
    dead = subprocess.Popen(["true"])
    dead.wait()
    holders = tmp_path / "pg" / HOLDERS_FILE
    holders.write_text(json.dumps([dead.pid, *json.loads(holders.read_text())]))
    assert server.stop()
