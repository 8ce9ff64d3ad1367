"""A run killed with SIGKILL while it stores years of data leaves every day with its old rows or
its new rows, never a mix; the next run completes without anyone cleaning up after it."""

import os
import signal
import subprocess
import time
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from coinmarket_assets_tests.dagster_cli import cli_environment, start_materialize
from coinmarket_assets_tests.dagster_runs import read_table
from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, random_walk

TABLES = ["historical_trade_data", "historical_rolling"]
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
    return start_materialize(env, TABLES, RANGE)


def _writing(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE state = 'active' AND query ILIKE 'COPY%FROM%'"
        ).fetchall()
    return bool(rows)


def _tables() -> dict[str, pd.DataFrame]:
    return {
        table: read_table(table).drop(columns=["source", "fetched_at"], errors="ignore")
        for table in TABLES
    }


def _days(frame: pd.DataFrame) -> dict[pd.Timestamp, tuple[int, ...]]:
    """Each day's rows, in order, as the 64-bit hashes of their values (NaN hashes alike).

    Compared day by day, these tell what comparing the rows themselves tells, in two seconds
    rather than the minute that filtering 117,000 rows once per day takes."""
    hashes = pd.util.hash_pandas_object(frame, index=False)
    return hashes.groupby(frame["trade_date"]).agg(tuple).to_dict()


def _assert_whole_days(killed: pd.DataFrame, old: pd.DataFrame, new: pd.DataFrame, table: str):
    """Every day of ``killed`` holds exactly that day's old rows or its new rows."""
    rows, was, will_be = _days(killed), _days(old), _days(new)
    for day in sorted(was.keys() | will_be.keys()):
        whole = rows.get(day, ()) in (was.get(day, ()), will_be.get(day, ()))
        assert whole, f"{table} {day:%Y-%m-%d} is mixed"


@pytest.mark.slow
def test_sigkill_while_storing_leaves_whole_old_or_new_days(database_url: str, tmp_path: Path):
    source = tmp_path / "cmc"
    env = cli_environment(tmp_path, source, _market(1.0).tickers)
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

    # The next run completes: the dead run's locks went with its database sessions.
    assert _materialize(env).wait(timeout=600) == 0
    new = _tables()
    assert not new["historical_trade_data"].equals(old["historical_trade_data"])
    for table in TABLES:
        _assert_whole_days(killed[table], old[table], new[table], table)
