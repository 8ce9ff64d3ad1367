from collections.abc import Iterator

import pytest

from coinmarket_assets.sources.coinmarketcap.settings import ClientSettings
from coinmarket_assets.sources.coinmarketcap.source import CoinMarketCapSource
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import SyntheticMarket


@pytest.fixture
def fake_cmc(market: SyntheticMarket) -> Iterator[FakeCoinMarketCap]:
    """The local CoinMarketCap with a 30-day cap per historical call, so paging shows."""
    with FakeCoinMarketCap(market, max_days=30) as server:
        yield server


def fast_settings(server: FakeCoinMarketCap, **overrides: object) -> ClientSettings:
    """Settings that keep tests quick: short backoff and timeouts, a high rate limit."""
    values: dict[str, object] = {
        "data_api_url": server.data_api_url,
        "pro_api_url": server.pro_api_url,
        "rate_limit": 200.0,
        "backoff_seconds": 0.05,
        "max_backoff_seconds": 0.2,
        "read_timeout": 2.0,
    }
    return ClientSettings(**{**values, **overrides})


@pytest.fixture
def live(fake_cmc: FakeCoinMarketCap) -> CoinMarketCapSource:
    return CoinMarketCapSource(fast_settings(fake_cmc))
