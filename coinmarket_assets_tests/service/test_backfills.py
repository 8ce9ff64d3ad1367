"""Backfills launched through the webserver's GraphQL API and run by the daemon."""

from collections.abc import Iterator
from datetime import timedelta

import pytest

from coinmarket_assets_tests.dagster_runs import (
    PARTITIONED_ASSETS,
    dump_all,
    empty_tables,
    materialize_days,
    read_table,
)
from coinmarket_assets_tests.service.conftest import service_environment, yesterday
from coinmarket_assets_tests.service.dagster_service import DagsterService
from coinmarket_assets_tests.synthetic import SyntheticMarket

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(
    service_database: str, service_market: SyntheticMarket, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterService]:
    home = tmp_path_factory.mktemp("service")
    env = service_environment(home, service_database, service_market)
    with DagsterService(env, home / "dev.log") as running:
        yield running


def _days_back(first: int, last: int) -> tuple[str, str]:
    """The days ``first`` and ``last`` days before yesterday."""
    return (
        (yesterday() - timedelta(days=first)).isoformat(),
        (yesterday() - timedelta(days=last)).isoformat(),
    )


def _backfill_runs(service: DagsterService, first_day: str, last_day: str) -> list[dict]:
    backfill = service.launch_backfill(PARTITIONED_ASSETS, first_day, last_day)
    assert service.wait_for_backfill(backfill) == "COMPLETED_SUCCESS", service.output()[-4000:]
    runs = service.runs({"dagster/backfill": backfill})
    assert all(run["status"] == "SUCCESS" for run in runs)
    return runs


def test_a_backfill_runs_in_a_handful_of_runs_whatever_its_length(
    service: DagsterService,
    service_database: str,
    service_market: SyntheticMarket,
    monkeypatch: pytest.MonkeyPatch,
):
    short = _backfill_runs(service, *_days_back(119, 90))  # 30 days
    long = _backfill_runs(service, *_days_back(89, 0))  # 90 days, up to yesterday
    print(f"runs of a 30-day backfill: {len(short)}, of a 90-day backfill: {len(long)}")
    assert len(long) == len(short) <= len(PARTITIONED_ASSETS)

    for name in ("COINMARKET_DATABASE_URL", "COINMARKET_SOURCE", "COINMARKET_TICKERS"):
        monkeypatch.setenv(name, service.env[name])
    stored = read_table("historical_trade_data")
    first_day = yesterday() - timedelta(days=119)
    assert stored["trade_date"].min().date() == first_day
    assert stored["trade_date"].max().date() == yesterday()
    candles = service_market.candles()
    assert len(stored) == (candles["trade_date"].dt.date >= first_day).sum()
    before = dump_all(service_database)
    for table in read_table("top_ranking"), read_table("bottom_ranking"):
        assert table["trade_date"].nunique() == 120 - 5  # a return needs the close 5 days back
    # The same days in one in-process run give the same tables.
    empty_tables(service_database)
    materialize_days(first_day.isoformat(), yesterday().isoformat())
    after = dump_all(service_database)
    assert [t for t in before if before[t] != after[t]] == []
