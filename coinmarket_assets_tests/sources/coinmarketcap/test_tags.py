"""Tags from the live APIs: the local CoinMarketCap serves each coin's tags as a list of slugs in
the data-api's and the Pro API's listings; the client stores them as sorted ';'-joined slugs in
historical_listings (as listed that day) and currency_status (as listed now)."""

from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from coinmarket_assets.sources.base import Coin
from coinmarket_assets.sources.coinmarketcap.listings import wire_tags
from coinmarket_assets.sources.coinmarketcap.source import CoinMarketCapSource
from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.dagster_runs import materialize_days, materialize_unpartitioned
from coinmarket_assets_tests.sources.coinmarketcap.conftest import fast_settings
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import (
    STABLECOIN,
    WRAPPED_TOKENS,
    SyntheticMarket,
    default_market,
)

FIRST, LAST = date(2020, 4, 18), date(2020, 4, 21)
RETAGGED = date(2020, 4, 20)  # BETA is a wrapped token from this day on
KEY = "k"


def tagged_market() -> SyntheticMarket:
    """The default market with a stablecoin and a coin whose tags come unsorted, mixed-case
    and repeated, as a plain list of slugs."""
    return default_market().with_tags(
        {"GAMMA": (STABLECOIN, "asset-backed-stablecoin"), "DELTA": ("Memes", "defi", "memes")}
    )


# The stored form, written out by hand: sorted, lower-cased, unique, ';'-joined.
STORED = {103: "asset-backed-stablecoin;stablecoin", 104: "defi;memes"}


def expected_tags(coin_id: int, day: date | None) -> str | None:
    """A coin's stored tags on ``day`` (None: now), by the design of this module."""
    if coin_id == 102 and (day is None or day >= RETAGGED):
        return "defi;wrapped-tokens"
    return STORED.get(coin_id)


@pytest.fixture
def server() -> Iterator[FakeCoinMarketCap]:
    with FakeCoinMarketCap(tagged_market(), api_key=KEY, pro_listings_allowed=True) as fake:
        fake.set_tags("BETA", (WRAPPED_TOKENS, "defi"), since=RETAGGED)
        yield fake


def test_wire_tags_are_stored_as_sorted_unique_lower_case_slugs():
    assert wire_tags(["stablecoin", "Asset-Backed-Stablecoin", "stablecoin"]) == (
        "asset-backed-stablecoin;stablecoin"
    )
    # The detail endpoint's shape: objects that carry a slug.
    assert wire_tags([{"slug": "pow", "name": "PoW"}, {"slug": "mineable"}]) == "mineable;pow"
    assert wire_tags([]) is None
    assert wire_tags(None) is None


@pytest.mark.parametrize("api_key", [None, KEY], ids=["data-api", "pro-api"])
def test_the_live_listings_give_each_coin_the_tags_it_carried_that_day(
    server: FakeCoinMarketCap, api_key: str | None
):
    source = CoinMarketCapSource(fast_settings(server, api_key=api_key))
    listings = source.historical_listings(FIRST, LAST, 10)
    got = {
        (row.trade_date.date(), row.coin_id): row.tags
        for row in listings.itertuples()
        if isinstance(row.tags, str)
    }
    expected = {
        (day.date(), coin_id): expected_tags(coin_id, day.date())
        for day, coin_id in zip(listings["trade_date"], listings["coin_id"], strict=True)
        if expected_tags(coin_id, day.date())
    }
    assert got == expected
    assert got[(LAST, 102)] == "defi;wrapped-tokens" and (FIRST, 102) not in got
    api = "/pro/" if api_key else "/data-api/"
    assert {r.path.split("/v")[0] + "/" for r in server.requests if "listings" in r.path} == {api}
    status = source.coin_status([Coin(coin_id, "", "", "") for coin_id in range(101, 106)])
    assert dict(zip(status["coin_id"], status["tags"], strict=True)) == {
        coin_id: expected_tags(coin_id, None) for coin_id in range(101, 106)
    }


def test_the_live_source_stores_tags_in_currency_status_and_historical_listings(
    server: FakeCoinMarketCap, database_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(DATABASE_URL_ENV, database_url)
    monkeypatch.setenv("COINMARKET_SOURCE", "coinmarketcap")
    monkeypatch.setenv("COINMARKET_CMC_BASE_URL", server.data_api_url)
    monkeypatch.setenv("COINMARKET_CMC_RATE_LIMIT", "100")
    monkeypatch.setenv("COINMARKET_TICKERS", "ALPHA,BETA,GAMMA,DELTA")
    materialize_unpartitioned(["currency_status"])
    materialize_days(str(FIRST), str(LAST), ["historical_listings"])
    with psycopg.connect(database_url) as conn:
        status = dict(conn.execute("SELECT coin_id, tags FROM currency_status").fetchall())
        listed = conn.execute(
            "SELECT trade_date, coin_id, tags FROM historical_listings ORDER BY 1, 2"
        ).fetchall()
    assert status == {coin_id: expected_tags(coin_id, None) for coin_id in (101, 102, 103, 104)}
    assert listed and all(tags == expected_tags(coin, day) for day, coin, tags in listed)
    assert {(day, coin) for day, coin, tags in listed if tags == "defi;wrapped-tokens"} == {
        (day, 102) for day in (RETAGGED, LAST)
    }
