"""A run killed with SIGKILL while it stores years of data leaves every day with its old rows or
its new rows, never a mix; the next run completes."""

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from coinmarket_assets_tests.dagster_runs import read_table
from coinmarket_assets_tests.synthetic import SyntheticCoin, SyntheticMarket, random_walk

PROJECT = Path(__file__).resolve().parents[2]
TABLES = ["historical_trade_data", "historical_rolling"]
ASSETS = ",".join(TABLES)
RANGE = "2015-01-01...2022-12-31"


def _market(scale: float) -> SyntheticMarket:
    return SyntheticMarket(
        [
            SyntheticCoin(
                100 + n,
                f"K{n:02d}",
                f"Coin {n}",
                random_walk(n, date(2015, 1, 1), 2922, 5.0 + n).assign(
                    close=lambda frame: frame["close"] * scale
                ),
            )
            for n in range(40)
        ]
    )


def _materialize(env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "dagster", "asset", "materialize"]
    command += [
        "-m",
        "coinmarket_assets.definitions",
        "--select",
        ASSETS,
        "--partition-range",
        RANGE,
    ]
    return subprocess.Popen(
        command,
        env=env,
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _writing(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE state = 'active' AND query ILIKE 'COPY%FROM%'"
        ).fetchall()
    return bool(rows)


def _release_dead_runs(env: dict[str, str]) -> None:
    """What the daemon's run monitoring does for a run whose process died: mark it failed and
    free its concurrency slots (the source pool), so the next run is not blocked."""
    code = """
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
with DagsterInstance.get() as instance:
    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        instance.report_run_failed(run)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
"""
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


def _tables() -> dict[str, pd.DataFrame]:
    return {
        table: read_table(table).drop(columns=["source", "fetched_at"], errors="ignore")
        for table in TABLES
    }


def _assert_whole_days(killed: pd.DataFrame, old: pd.DataFrame, new: pd.DataFrame, table: str):
    """Every day of ``killed`` holds exactly that day's old rows or its new rows."""
    for day in sorted(set(old["trade_date"]) | set(new["trade_date"])):
        rows = killed[killed["trade_date"] == day].reset_index(drop=True)
        was = old[old["trade_date"] == day].reset_index(drop=True)
        will_be = new[new["trade_date"] == day].reset_index(drop=True)
        assert rows.equals(was) or rows.equals(will_be), f"{table} {day:%Y-%m-%d} is mixed"


@pytest.mark.slow
def test_sigkill_while_storing_leaves_whole_old_or_new_days(database_url: str, tmp_path: Path):
    source = tmp_path / "cmc"
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "COINMARKET_SOURCE": f"csv:{source}",
        "COINMARKET_TICKERS": ",".join(_market(1.0).tickers),
    }
    _market(1.0).write_csv(source)
    assert _materialize(env).wait(timeout=600) == 0
    old = _tables()

    _market(2.0).write_csv(source)  # every close revised
    run = _materialize(env)
    deadline = time.monotonic() + 600
    while not _writing(database_url):
        assert run.poll() is None and time.monotonic() < deadline, "the run never wrote"
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    killed = _tables()
    _release_dead_runs(env)

    assert _materialize(env).wait(timeout=600) == 0  # the next run completes
    new = _tables()
    assert not new["historical_trade_data"].equals(old["historical_trade_data"])
    for table in TABLES:
        _assert_whole_days(killed[table], old[table], new[table], table)
