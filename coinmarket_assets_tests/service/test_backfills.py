"""Backfills launched through the webserver's GraphQL API and run by the daemon."""

from datetime import date, timedelta

import pytest

from coinmarket_assets_tests.dagster_runs import (
    PARTITIONED_ASSETS,
    dump_all,
    empty_tables,
    materialize_days,
    read_table,
)
from coinmarket_assets_tests.service.conftest import first_candle_day, last_candle_day
from coinmarket_assets_tests.service.dagster_service import DagsterService
from coinmarket_testkit.synthetic import SyntheticMarket

pytestmark = pytest.mark.slow
SHORT_DAYS, LONG_DAYS = 30, 90
RETURN_DAYS = 5  # a return needs the close of 5 days before, stored


def _days(first: date, count: int) -> tuple[str, str]:
    return first.isoformat(), (first + timedelta(days=count - 1)).isoformat()


def _succeeded_runs(service: DagsterService, backfill: str) -> list[dict]:
    assert service.wait_for_backfill(backfill) == "COMPLETED_SUCCESS", service.output()[-4000:]
    runs = service.runs({"dagster/backfill": backfill})
    assert all(run["status"] == "SUCCESS" for run in runs)
    return runs


def _partitioned_tables(url: str) -> dict[str, bytes]:
    return {table: rows for table, rows in dump_all(url).items() if table in PARTITIONED_ASSETS}


def test_a_backfill_runs_in_a_handful_of_runs_whatever_its_length(
    default_service: DagsterService,
    default_service_database: str,
    default_service_market: SyntheticMarket,
    monkeypatch: pytest.MonkeyPatch,
):
    """A 30-day and a 90-day backfill, launched together over days further apart than any
    lookback (so that neither reads the other's rows), each run in the same few runs, and store
    what in-process runs of the same days store."""
    service, url, market = default_service, default_service_database, default_service_market
    short = _days(first_candle_day(market), SHORT_DAYS)
    long = _days(last_candle_day(market) - timedelta(days=LONG_DAYS - 1), LONG_DAYS)
    backfills = [service.launch_backfill(PARTITIONED_ASSETS, *days) for days in (short, long)]
    short_runs, long_runs = (_succeeded_runs(service, backfill) for backfill in backfills)
    print(f"runs of a 30-day backfill: {len(short_runs)}, of a 90-day backfill: {len(long_runs)}")
    assert len(long_runs) == len(short_runs) <= len(PARTITIONED_ASSETS)

    for name in ("COINMARKET_DATABASE_URL", "COINMARKET_SOURCE", "COINMARKET_TICKERS"):
        monkeypatch.setenv(name, service.env[name])
    stored = read_table("historical_trade_data")
    candles = market.candles()
    dates = candles["trade_date"]
    backfilled = candles[dates.between(*short) | dates.between(*long)]
    assert len(stored) == len(backfilled)
    assert set(stored["trade_date"]) == set(backfilled["trade_date"])
    for table in "top_ranking", "bottom_ranking":
        ranked_days = read_table(table)["trade_date"].nunique()
        assert ranked_days == SHORT_DAYS + LONG_DAYS - 2 * RETURN_DAYS, table
    # The same days in in-process runs give the same tables.
    tables = _partitioned_tables(url)
    empty_tables(url)
    for days in short, long:
        materialize_days(*days)
    after = _partitioned_tables(url)
    assert [table for table in tables if tables[table] != after[table]] == []
