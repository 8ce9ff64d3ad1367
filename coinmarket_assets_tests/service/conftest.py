"""A database and a market ending yesterday (so that the schedule's day exists), for tests that
start the whole service."""

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.synthetic import SyntheticMarket, default_market

MARKET_DAYS = 200


def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def market_first_day() -> date:
    return yesterday() - timedelta(days=MARKET_DAYS - 1)


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
    """The environment of ``coinmarket dev`` over a ``csv:`` copy of ``market``."""
    source = home / "cmc"
    market.write_csv(source)
    env = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    return env | {
        DATABASE_URL_ENV: database_url,
        "COINMARKET_HOME": str(home),
        "COINMARKET_SOURCE": f"csv:{source}",
        "COINMARKET_TICKERS": ",".join(market.tickers),
        "COINMARKET_START_DATE": market_first_day().isoformat(),
        **overrides,
    }
