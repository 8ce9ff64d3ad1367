"""Fixtures: a real PostgreSQL (embedded unless COINMARKET_DATABASE_URL is set), one fresh
migrated database per test, and generated CoinMarketCap-style csv sources."""

import itertools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets.storage.embedded import create_database
from coinmarket_assets.storage.migrations import apply_migrations
from coinmarket_testkit.databases import database_url_for, drop_database, embedded_server
from coinmarket_testkit.synthetic import SyntheticMarket, default_market

TEMPLATE_DATABASE = "coinmarket_test_template"
_database_numbers = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def coinmarket_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Files the pipeline writes (charts) go to a folder of the test session's, not the
    checkout's ``.coinmarket``."""
    home = tmp_path_factory.mktemp("coinmarket_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COINMARKET_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """An administrative URL of the PostgreSQL server the tests use."""
    external = os.environ.get(DATABASE_URL_ENV)
    if external:
        yield external
        return
    with (
        tempfile.TemporaryDirectory(prefix="cm-pg-") as folder,
        embedded_server(Path(folder) / "data") as url,
    ):
        yield url


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    create_database(server_url, TEMPLATE_DATABASE)
    url = database_url_for(server_url, TEMPLATE_DATABASE)
    apply_migrations(url)
    return url


@contextmanager
def module_database(server_url: str, prefix: str) -> Iterator[str]:
    """A fresh migrated database for the tests of one module, dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{next(_database_numbers)}"
    create_database(server_url, name, template=TEMPLATE_DATABASE)
    try:
        yield database_url_for(server_url, name)
    finally:
        drop_database(server_url, name)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A fresh database without any schema."""
    name = f"coinmarket_test_{os.getpid()}_{next(_database_numbers)}"
    create_database(server_url, name)
    yield database_url_for(server_url, name)
    drop_database(server_url, name)


@pytest.fixture
def database_url(
    server_url: str, template_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh migrated database, exported as COINMARKET_DATABASE_URL."""
    name = f"coinmarket_test_{os.getpid()}_{next(_database_numbers)}"
    create_database(server_url, name, template=TEMPLATE_DATABASE)
    url = database_url_for(server_url, name)
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    yield url
    drop_database(server_url, name)


@pytest.fixture
def market() -> SyntheticMarket:
    return default_market()


@pytest.fixture
def csv_source(tmp_path: Path, market: SyntheticMarket, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The generated market written as a csv: source and selected as COINMARKET_SOURCE."""
    directory = tmp_path / "cmc"
    market.write_csv(directory)
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{directory}")
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join(market.tickers))
    return directory
