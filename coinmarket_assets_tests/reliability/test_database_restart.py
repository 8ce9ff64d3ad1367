"""A database restart in the middle of a run: the run recovers or fails clearly, no day is left
partial or doubled, and the next run completes."""

import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets.storage.embedded import EmbeddedPostgres
from coinmarket_assets.storage.migrations import apply_migrations
from coinmarket_assets_tests.dagster_cli import cli_environment, start_materialize
from coinmarket_assets_tests.dagster_runs import (
    PARTITIONED_ASSETS,
    dump_all,
    empty_tables,
    materialize_days,
)
from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, random_walk

FIRST, LAST = "2018-01-01", "2021-12-31"
DAYS = f"{FIRST}...{LAST}"
RUN_SECONDS = 600


@pytest.fixture
def restartable(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedPostgres]:
    """A server of this test's own, since restarting it ends every session on it (in a folder
    outside pytest's, which other pytest sessions may make private to root)."""
    with tempfile.TemporaryDirectory(prefix="cm-restart-") as folder:
        server = EmbeddedPostgres(Path(folder) / "data", delete_on_stop=True)
        url = server.start("coinmarket")
        apply_migrations(url)
        monkeypatch.setenv(DATABASE_URL_ENV, url)
        yield server
        server.stop()


def _market() -> SyntheticMarket:
    days = (date.fromisoformat(LAST) - date.fromisoformat(FIRST)).days + 1
    return SyntheticMarket(
        [
            SyntheticCoin(
                100 + n, f"R{n:02d}", f"Coin {n}", random_walk(n, date(2018, 1, 1), days, 3.0 + n)
            )
            for n in range(20)
        ]
    )


def _copying(url: str) -> bool:
    """Whether a session is storing rows with COPY right now."""
    with psycopg.connect(url, autocommit=True) as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query ILIKE 'COPY%FROM%'"
            ).fetchall()
        )


def _run_completes(env: dict[str, str]) -> bool:
    return start_materialize(env, PARTITIONED_ASSETS, DAYS).wait(RUN_SECONDS) == 0


@pytest.mark.slow
def test_a_restart_while_storing_is_survived_and_leaves_whole_days(
    restartable: EmbeddedPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url = restartable.start("coinmarket")
    market = _market()
    source = tmp_path / "cmc"
    market.write_csv(source)
    env = cli_environment(tmp_path, source, market.tickers)
    log = tmp_path / "run.log"

    run = start_materialize(env, PARTITIONED_ASSETS, DAYS, log)
    deadline = time.monotonic() + RUN_SECONDS
    while not _copying(url):
        assert run.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.02)
    started = time.monotonic()
    restartable.restart()
    print(f"restarted in {time.monotonic() - started:.1f} s")
    exit_code = run.wait(timeout=RUN_SECONDS)  # never hangs
    print(f"the interrupted run exited with {exit_code}")
    output = log.read_text()
    assert "administrator command" in output or "connection" in output.lower(), output[-3000:]
    after_restart = dump_all(url)

    # Whatever the restart interrupted, the next run completes, and the tables then equal a
    # run that no restart disturbed.
    if exit_code == 0:
        # The run recovered by itself: the next run, from empty tables (Dagster's own state as
        # the restart left it), is the undisturbed run whose tables it must have left.
        empty_tables(url)
        assert _run_completes(env)
        assert after_restart == dump_all(url)
    else:
        # The next run completes over what the failed run left, and equals an undisturbed run.
        assert _run_completes(env)
        recovered = dump_all(url)
        monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{source}")
        monkeypatch.setenv("COINMARKET_TICKERS", ",".join(market.tickers))
        empty_tables(url)
        materialize_days(FIRST, LAST)
        assert recovered == dump_all(url)
