"""COINMARKET_TICKERS=top:N on the live client: a three-week backfill of the whole graph against
the local CoinMarketCap over real sockets, proven against a plain-Python reading of its market.

The market is designed: a giant, a coin that falls out of the top N and one that rises into it,
one that dies mid-range while a member, one born mid-range straight into the top N, one listed
but never a member and one within the listing depth only for the days between that death and
that birth.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import psycopg
import pytest

from coinmarket_assets.settings import RSI_LOOKBACK_DAYS
from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.dagster_runs import materialize_days, materialize_unpartitioned
from coinmarket_assets_tests.reference import ranking_reference
from coinmarket_assets_tests.sources.coinmarketcap.market_reference import reference_listings
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, random_walk

pytestmark = pytest.mark.slow  # one backfill of the whole graph, about 30 s

TOP_N, DEPTH = 3, 5
RETURN_DAYS, RANK_SIZE = 5, 5  # the defaults
DATA_FIRST = date(2020, 3, 1)  # more than the lookback before the run
RUN = (date(2021, 3, 1), date(2021, 3, 21))
DIES, DIES_LAST_DAY = 6, date(2021, 3, 10)
NEWC, NEWC_BORN = 7, date(2021, 3, 14)
UNIT = 1e8


def _t(day: date) -> int:
    """Days into the run, clamped at 0 (caps are flat before it)."""
    return max(0, (day - RUN[0]).days)


# (id, ticker, first day, last day, market cap in UNITs on a day); ids break no tie by design.
DESIGN: list[tuple[int, str, date, date, Callable[[date], float]]] = [
    (1, "AAA", DATA_FIRST, RUN[1], lambda d: 50.0),
    (2, "FALL", DATA_FIRST, RUN[1], lambda d: 20.0 - 0.5 * _t(d)),
    (3, "RISE", DATA_FIRST, RUN[1], lambda d: 10.05 + 0.5 * _t(d)),
    (4, "FLAT", DATA_FIRST, RUN[1], lambda d: 12.0),
    (5, "LOW", DATA_FIRST, RUN[1], lambda d: 5.0),
    (DIES, "DIES", DATA_FIRST, DIES_LAST_DAY, lambda d: 15.0),
    (NEWC, "NEWC", NEWC_BORN, RUN[1], lambda d: 30.0),
]


def designed_market() -> SyntheticMarket:
    coins = []
    for coin_id, ticker, first, last, cap in DESIGN:
        candles = random_walk(coin_id, first, (last - first).days + 1, 10.0 + coin_id)
        candles["market_cap"] = [cap(day.date()) * UNIT for day in candles["date"]]
        coins.append(SyntheticCoin(coin_id, ticker, ticker.title(), candles))
    return SyntheticMarket(coins)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# The reference: the rules over the market's candles, in plain Python.


def expected_members(listings: pd.DataFrame) -> dict[date, set[int]]:
    """Each run day's members: its coins ranked TOP_N or better."""
    members: dict[date, set[int]] = {day: set() for day in _days(*RUN)}
    for row in listings.itertuples():
        if row.rank <= TOP_N:
            members[row.trade_date.date()].add(row.coin_id)
    return members


def expected_candles(
    market: SyntheticMarket, listings: pd.DataFrame, members: dict[date, set[int]]
) -> dict[tuple[int, date], tuple[float, ...]]:
    """Every member's candles from RSI_LOOKBACK_DAYS before its first member day to its last
    listed day of the run: (coin, day) -> (open, high, low, close, volume, market_cap)."""
    stored = {}
    for coin in market.coins:
        member_days = [day for day, ids in members.items() if coin.coin_id in ids]
        if not member_days:
            continue
        listed = listings.loc[listings["coin_id"] == coin.coin_id, "trade_date"]
        first = min(member_days) - timedelta(days=RSI_LOOKBACK_DAYS)
        last = listed.max().date()
        for row in coin.candles.itertuples():
            if first <= row.date.date() <= last:
                values = (row.open, row.high, row.low, row.close, row.volume, row.market_cap)
                stored[(coin.coin_id, row.date.date())] = values
    return stored


def expected_rankings(
    market: SyntheticMarket, members: dict[date, set[int]], highest_first: bool
) -> list[tuple]:
    """Each day's members with a RETURN_DAYS-day return, ranked by it."""
    closes = {
        (coin.coin_id, row.date.date()): row.close
        for coin in market.coins
        for row in coin.candles.itertuples()
    }
    tickers = {coin.coin_id: coin.ticker for coin in market.coins}
    rows = []
    for day, ids in members.items():
        for coin_id in ids:
            before = closes.get((coin_id, day - timedelta(days=RETURN_DAYS)))
            if before:
                ret = closes[(coin_id, day)] / before - 1
                rows.append((pd.Timestamp(day), coin_id, tickers[coin_id], ret))
    returns = pd.DataFrame(rows, columns=["trade_date", "coin_id", "ticker", "period_return"])
    return [
        (day.date(), rank, coin_id, ticker, value)
        for day, rank, coin_id, ticker, value in ranking_reference(
            returns, RANK_SIZE, highest_first
        )
    ]


# The run, once for the module.


@dataclass(frozen=True)
class Backfill:
    url: str
    market: SyntheticMarket
    listings: pd.DataFrame  # the reference listings of the run's days


@pytest.fixture(scope="module")
def backfill(server_url: str, template_url: str) -> Iterator[Backfill]:
    """currency_status, then one run of every daily asset over RUN, from the local server."""
    market = designed_market()
    with (
        module_database(server_url, "coinmarket_live_top_n") as url,
        FakeCoinMarketCap(market) as server,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv(DATABASE_URL_ENV, url)
        patch.setenv("COINMARKET_SOURCE", "coinmarketcap")
        patch.setenv("COINMARKET_CMC_BASE_URL", server.data_api_url)
        patch.setenv("COINMARKET_CMC_RATE_LIMIT", "100")
        patch.setenv("COINMARKET_CMC_BACKOFF_SECONDS", "0.05")
        patch.setenv("COINMARKET_TICKERS", f"top:{TOP_N}")
        patch.setenv("COINMARKET_LISTING_DEPTH", str(DEPTH))
        materialize_unpartitioned(["currency_status"])
        materialize_days(*map(str, RUN))
        yield Backfill(url, market, reference_listings(market, *RUN, DEPTH))


def _query(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def _plain(value: object) -> object:
    return None if isinstance(value, float) and math.isnan(value) else value


def test_the_reference_market_has_the_designed_turns(backfill: Backfill):
    members = expected_members(backfill.listings)
    assert members[RUN[0]] == {1, 2, DIES}
    assert members[DIES_LAST_DAY] == {1, 2, DIES}
    assert members[RUN[1]] == {1, NEWC, 3}
    assert {4, 5}.isdisjoint(set().union(*members.values()))  # FLAT and LOW never are
    # LOW is within the listing depth only while DIES is dead and NEWC not born.
    low_days = backfill.listings.loc[backfill.listings["coin_id"] == 5, "trade_date"]
    assert [day.date() for day in low_days] == _days(
        DIES_LAST_DAY + timedelta(days=1), NEWC_BORN - timedelta(days=1)
    )


def test_the_listings_are_stored_to_the_depth_as_the_market_ranked_each_day(backfill: Backfill):
    rows = _query(
        backfill.url,
        "SELECT trade_date, coin_id, ticker, coin_name, slug, rank, price, market_cap, "
        "volume_24h, circulating_supply, total_supply, max_supply, tags FROM historical_listings "
        "ORDER BY trade_date, rank",
    )
    expected = [
        (row[0].date(), *map(_plain, row[1:])) for row in backfill.listings.itertuples(index=False)
    ]
    assert rows == expected


def test_members_candles_are_stored_with_their_lookback_and_no_one_elses(backfill: Backfill):
    members = expected_members(backfill.listings)
    expected = expected_candles(backfill.market, backfill.listings, members)
    rows = _query(
        backfill.url,
        "SELECT coin_id, trade_date, open, high, low, close, volume, market_cap "
        "FROM historical_trade_data",
    )
    assert {(coin_id, day): tuple(values) for coin_id, day, *values in rows} == expected
    dies_days = sorted(day for coin_id, day in expected if coin_id == DIES)
    assert dies_days[-1] == DIES_LAST_DAY
    assert dies_days[0] == RUN[0] - timedelta(days=RSI_LOOKBACK_DAYS)


@pytest.mark.parametrize(
    ("table", "highest_first"), [("top_ranking", True), ("bottom_ranking", False)]
)
def test_each_day_ranks_only_its_members(backfill: Backfill, table: str, highest_first: bool):
    members = expected_members(backfill.listings)
    rows = _query(
        backfill.url,
        f"SELECT trade_date, rank, coin_id, ticker, period_return FROM {table} "
        "ORDER BY trade_date, rank",
    )
    expected = expected_rankings(backfill.market, members, highest_first)
    assert [row[:4] for row in rows] == [row[:4] for row in expected]
    assert [row[4] for row in rows] == pytest.approx([row[4] for row in expected], rel=1e-12)


def test_the_dead_coin_is_inactive_in_currency_status_with_its_last_day(backfill: Backfill):
    rows = _query(
        backfill.url,
        "SELECT coin_id, is_active, first_historical_day, last_historical_day "
        "FROM currency_status ORDER BY coin_id",
    )
    assert rows == [
        (coin_id, coin_id != DIES, first, last) for coin_id, _, first, last, _ in DESIGN
    ]
