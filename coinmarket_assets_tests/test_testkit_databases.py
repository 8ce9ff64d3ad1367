"""The tests' and benchmarks' embedded PostgreSQL ends with the process that started it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

HOLDER = """
import sys, time
from pathlib import Path
from coinmarket_testkit.databases import embedded_server
with embedded_server(Path(sys.argv[1])) as url:
    print(url, flush=True)
    time.sleep(600)
"""


def _server_gone(data_dir: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while (data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not (data_dir / "postmaster.pid").exists()


def test_a_sigkilled_test_session_leaves_no_embedded_server_running(tmp_path: Path):
    data_dir = tmp_path / "pg"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        url = holder.stdout.readline().strip()
        with psycopg.connect(url) as conn:  # the server is up and answers
            assert conn.execute("SELECT 1").fetchone() == (1,)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        assert _server_gone(data_dir, 60)
    finally:
        holder.kill()
