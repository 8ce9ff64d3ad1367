"""A database and a market ending yesterday (so that the schedule's day exists), for tests that
start the whole service; and one service with the default settings, shared by the modules that
need nothing else (a ``coinmarket dev`` start is the dearest part of these tests)."""

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.service.dagster_service import DagsterService
from coinmarket_testkit.synthetic import SyntheticMarket, default_market

MARKET_DAYS = 200
# Long enough for two backfills whose days lie further apart than the longest lookback (the RSI's
# 300 days), so that they can run at the same time without reading each other's rows.
DEFAULT_SERVICE_MARKET_DAYS = 450


def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def market_first_day(days: int = MARKET_DAYS) -> date:
    return yesterday() - timedelta(days=days - 1)


def first_candle_day(market: SyntheticMarket) -> date:
    return market.candles()["trade_date"].min().date()


def last_candle_day(market: SyntheticMarket) -> date:
    return market.candles()["trade_date"].max().date()


@pytest.fixture(scope="module")
def service_market() -> SyntheticMarket:
    return default_market(market_first_day(), MARKET_DAYS)


@pytest.fixture(scope="module")
def service_database(server_url: str, template_url: str) -> Iterator[str]:
    """A fresh migrated database shared by the tests of one module (one service each)."""
    with module_database(server_url, "coinmarket_service") as url:
        yield url


def service_environment(
    home: Path, database_url: str, market: SyntheticMarket, **overrides: str
) -> dict[str, str]:
    """The environment of ``coinmarket dev`` over a ``csv:`` copy of ``market``, whose first
    day is the first partition."""
    source = home / "cmc"
    market.write_csv(source)
    env = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    return env | {
        DATABASE_URL_ENV: database_url,
        "COINMARKET_HOME": str(home),
        "COINMARKET_SOURCE": f"csv:{source}",
        "COINMARKET_TICKERS": ",".join(market.tickers),
        "COINMARKET_START_DATE": first_candle_day(market).isoformat(),
        **overrides,
    }


@pytest.fixture(scope="package")
def default_service_market() -> SyntheticMarket:
    return default_market(
        market_first_day(DEFAULT_SERVICE_MARKET_DAYS), DEFAULT_SERVICE_MARKET_DAYS
    )


@pytest.fixture(scope="package")
def default_service_database(server_url: str, template_url: str) -> Iterator[str]:
    with module_database(server_url, "coinmarket_default_service") as url:
        yield url


@pytest.fixture(scope="package")
def default_service(
    default_service_database: str,
    default_service_market: SyntheticMarket,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DagsterService]:
    """``coinmarket dev`` with the default settings, from the first module of this folder that
    asks for it to the end of the folder's tests. Its tests keep to their own assets or days:
    the backfills store only the partitioned tables, the browser only ``currency_status``."""
    home = tmp_path_factory.mktemp("default_service")
    env = service_environment(home, default_service_database, default_service_market)
    with DagsterService(env, home / "dev.log") as running:
        yield running
