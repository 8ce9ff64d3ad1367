"""The live client's historical listings and coin map against the local CoinMarketCap over real
sockets, checked against a plain-Python reading of the server's market."""

import re
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest

from coinmarket_assets.sources.base import Coin, SourceError
from coinmarket_assets.sources.coinmarketcap import data_api
from coinmarket_assets.sources.coinmarketcap.client import ApiClient
from coinmarket_assets.sources.coinmarketcap.source import CoinMarketCapSource
from coinmarket_assets.sources.validation import InvalidListingsError
from coinmarket_assets_tests.sources.coinmarketcap.conftest import fast_settings
from coinmarket_assets_tests.sources.coinmarketcap.market_reference import (
    reference_listings,
    reference_map,
)
from coinmarket_testkit.market import MISSING
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, default_market, random_walk

# ALPHA has no candle on 2020-03-31, LATE is born on 2020-04-10 and DIES dies after 2020-04-29.
FIRST, LAST = date(2020, 3, 30), date(2020, 5, 1)
DIES = 106
DIES_LAST_DAY = date(2020, 4, 29)
KEY = "k"


def dying_market() -> SyntheticMarket:
    """The default market and a coin whose candles end mid-range."""
    market = default_market()
    days = (DIES_LAST_DAY - date(2020, 1, 1)).days + 1
    dies = random_walk(6, date(2020, 1, 1), days, 40.0, volatility=0.08)
    market.coins.append(SyntheticCoin(DIES, "DIES", "Dies Early", dies))
    return market


def assert_same(listings: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        listings.astype({"trade_date": "datetime64[ns]"}),
        expected.astype({"trade_date": "datetime64[ns]"}),
        check_exact=True,
        check_dtype=False,
    )


def listing_requests(server: FakeCoinMarketCap, api: str = "/data-api/") -> list:
    return [r for r in server.requests if "listings/historical" in r.path and api in r.path]


@pytest.fixture
def server() -> Iterator[FakeCoinMarketCap]:
    with FakeCoinMarketCap(dying_market(), api_key=KEY) as fake:
        yield fake


def keyless(server: FakeCoinMarketCap, page_size: int) -> CoinMarketCapSource:
    source = CoinMarketCapSource(fast_settings(server))
    source.listing_page_size = page_size
    return source


def test_the_fake_answers_listing_pages_out_of_rank_order(server: FakeCoinMarketCap):
    client = ApiClient(fast_settings(server))
    pages = data_api.PageCount()
    rows = data_api.fetch_historical_listing(client, date(2020, 4, 15), 7, pages)
    ranks = [row["rank"] for row in rows]
    assert sorted(ranks) == [1, 2, 3, 4, 5, 6]
    assert ranks != sorted(ranks)  # re-sorting by rank is the client's job


@pytest.mark.parametrize(("depth", "page_size", "pages"), [(5, 2, 3), (3, 5000, 1), (9, 4, 2)])
def test_listings_are_paged_resorted_and_cut_to_depth_as_the_market_ranks(
    server: FakeCoinMarketCap, depth: int, page_size: int, pages: int
):
    source = keyless(server, page_size)
    listings = source.historical_listings(FIRST, LAST, depth)
    assert_same(listings, reference_listings(dying_market(), FIRST, LAST, depth))
    days = (LAST - FIRST).days + 1
    requests = listing_requests(server)
    assert len(requests) == days * pages
    limits = {r.query["limit"] for r in requests}
    assert limits == {str(min(depth, page_size))}


def test_a_dead_coin_is_listed_until_its_last_candle(server: FakeCoinMarketCap):
    listings = keyless(server, 5000).historical_listings(FIRST, LAST, 10)
    dies_days = listings.loc[listings["coin_id"] == DIES, "trade_date"]
    assert dies_days.max() == pd.Timestamp(DIES_LAST_DAY)
    assert len(dies_days) == (DIES_LAST_DAY - FIRST).days + 1


def test_a_failed_listing_page_is_retried_to_the_same_listing(server: FakeCoinMarketCap):
    server.fail_next(2, status=503, path="date=2020-04-20&convertId=2781&sort=cmc_rank")
    server.truncate_next(1, path="start=3")
    source = keyless(server, 2)
    listings = source.historical_listings(FIRST, LAST, 5)
    assert_same(listings, reference_listings(dying_market(), FIRST, LAST, 5))
    assert source.client.retries == 3
    failed = [r for r in listing_requests(server) if r.status == 503]
    assert [r.query["date"] for r in failed] == ["2020-04-20", "2020-04-20"]


def test_a_spent_retry_budget_fails_naming_the_day(server: FakeCoinMarketCap):
    source = CoinMarketCapSource(fast_settings(server, retry_budget=2))
    server.fail_next(20, status=500, path="date=2020-04-02")
    with pytest.raises(SourceError, match=r"listing of 2020-04-02: retry budget"):
        source.historical_listings(date(2020, 4, 2), date(2020, 4, 2), 5)


@pytest.mark.parametrize("plan_allows", [False, True], ids=["plan-refuses", "plan-allows"])
def test_the_pro_api_serves_listings_when_the_plan_allows_else_the_data_api(plan_allows: bool):
    market = dying_market()
    with FakeCoinMarketCap(market, api_key=KEY, pro_listings_allowed=plan_allows) as server:
        source = CoinMarketCapSource(fast_settings(server, api_key=KEY, max_workers=1))
        source.listing_page_size = 3
        listings = source.historical_listings(FIRST, LAST, 5)
        pro, keyless_calls = listing_requests(server, "/pro/"), listing_requests(server)
    assert_same(listings, reference_listings(market, FIRST, LAST, 5))
    if plan_allows:
        assert keyless_calls == []
        assert {r.status for r in pro} == {200}
    else:
        assert [r.status for r in pro] == [403]  # refused once, remembered
        assert len(keyless_calls) == 2 * ((LAST - FIRST).days + 1)


@pytest.mark.parametrize("api_key", [None, KEY], ids=["data-api", "pro-api"])
def test_the_coin_map_has_dead_coins_inactive_with_their_last_day(api_key: str | None):
    market = dying_market()
    with FakeCoinMarketCap(market, api_key=KEY) as server:
        source = CoinMarketCapSource(fast_settings(server, api_key=api_key))
        coins = source.coin_map()
        dead = source.coin_status([Coin(DIES, "DIES", "Dies Early", "dies-early")])
        maps = [r for r in server.requests if r.path.endswith("/cryptocurrency/map")]
    expected = reference_map(market)
    days = {c: "datetime64[ns]" for c in ["first_historical_day", "last_historical_day"]}
    got = coins.sort_values("coin_id", ignore_index=True)[expected.columns]
    pd.testing.assert_frame_equal(
        got.astype({"is_active": bool, **days}), expected.astype(days), check_dtype=False
    )
    assert not dead.loc[0, "is_active"]
    assert dead.loc[0, "last_historical_day"] == pd.Timestamp(DIES_LAST_DAY)
    assert "active,inactive,untracked" in {r.query.get("listing_status") for r in maps}


def test_coin_status_of_a_coin_the_source_does_not_know_keeps_its_names(
    server: FakeCoinMarketCap,
):
    status = keyless(server, 5000).coin_status([Coin(9999, "GONE", "Gone", "gone")])
    assert status.loc[0, ["coin_id", "ticker", "coin_name", "slug"]].tolist() == [
        9999,
        "GONE",
        "Gone",
        "gone",
    ]
    assert pd.isna(status.loc[0, "is_active"])


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("price", -1.0, "price is not positive"),
        ("rank", MISSING, "rank is missing"),
        ("rank", 2.5, "rank is not a whole number"),
        ("market_cap", "abc", "market_cap is not a number ('abc')"),
        ("total_supply", -5.0, "total_supply is negative"),
    ],
)
def test_a_bad_listing_row_fails_naming_coin_day_and_field(
    server: FakeCoinMarketCap, field: str, value: object, problem: str
):
    server.corrupt_listing("BETA", "2020-04-20", field, value)
    source = keyless(server, 5000)
    with pytest.raises(InvalidListingsError, match=re.escape(problem)) as raised:
        source.historical_listings(date(2020, 4, 18), date(2020, 4, 22), 10)
    assert re.search(r"\b102\b.*BETA.*2020-04-20", str(raised.value))
