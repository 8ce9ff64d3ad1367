"""COINMARKET_TICKERS=top:N over a csv: source with listings.csv: a two-month backfill and the
daily run after it, proven against a reference computed in plain Python from the files.

The market is small and designed: two giants, a coin that fades out of the top N (staying
listed), one that rises into it mid-range, one that dies mid-range, one born as a member, one
that is a member for three days, falls out of the listing and re-enters on the daily run, one
that tops a day's listing but has no candle at the source, and coins that are listed but never
members, or never listed at all.
"""

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from dagster import ExecuteInProcessResult

from coinmarket_assets.settings import RSI_LOOKBACK_DAYS
from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.dagster_runs import (
    materialize_days,
    materialize_unpartitioned,
)

TOP_N, DEPTH = 3, 6
DATA_FIRST = date(2020, 1, 1)  # the first candle of the coins born before the runs
BACKFILL = (date(2021, 1, 1), date(2021, 2, 28))
DAILY = (date(2021, 3, 1), date(2021, 3, 2))
DATA_LAST = DAILY[1]
TAMPERED_DAY = date(2020, 12, 1)  # a stored lookback candle of BACK the daily run must keep
TAMPERED_VOLUME = 12345.0
GHOST_DAY = date(2021, 2, 20)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _ramp(day: date, start: date, end: date, low: float, high: float) -> float:
    """low before start, high after end, linear in between."""
    if day <= start:
        return low
    if day >= end:
        return high
    return low + (high - low) * (day - start).days / (end - start).days


@dataclass(frozen=True)
class MarketCoin:
    coin_id: int
    ticker: str
    born: date
    died: date | None  # its last candle
    cap: Callable[[date], float]  # market cap in billions
    files: bool = True  # whether the source has its daily file

    def days(self) -> list[date]:
        return _days(self.born, self.died or DATA_LAST)


B = 1e9
COINS = [
    MarketCoin(1, "BIGA", DATA_FIRST, None, lambda d: 1000 + d.day),
    MarketCoin(2, "BIGB", DATA_FIRST, None, lambda d: 500 + d.day),
    # A member until RISE and NEWB pass it; listed all along.
    MarketCoin(3, "FADE", DATA_FIRST, None, lambda d: _ramp(d, BACKFILL[0], BACKFILL[1], 300, 50)),
    # Listed once above LOWB, a member from about 2021-02-12.
    MarketCoin(
        4, "RISE", DATA_FIRST, None, lambda d: _ramp(d, date(2021, 1, 10), BACKFILL[1], 10, 400)
    ),
    MarketCoin(5, "DEAD", DATA_FIRST, date(2021, 1, 20), lambda d: 350.0),
    MarketCoin(6, "LOWA", DATA_FIRST, None, lambda d: 20.0),
    MarketCoin(7, "LOWB", DATA_FIRST, None, lambda d: 15.0),
    MarketCoin(8, "TINY", DATA_FIRST, None, lambda d: 1.0),
    MarketCoin(9, "NEWB", date(2021, 2, 10), None, lambda d: 600.0),
    # A member on 2021-01-01..03, unlisted after, a member again from 2021-03-01.
    MarketCoin(
        10,
        "BACK",
        DATA_FIRST,
        None,
        lambda d: 400.0 if d <= date(2021, 1, 3) else 550.0 if d >= DAILY[0] else 5.0,
    ),
    # The top coin of one day, without any candle at the source.
    MarketCoin(11, "GHST", DATA_FIRST, None, lambda d: 2000.0 if d == GHOST_DAY else 0.1, False),
]
BY_ID = {coin.coin_id: coin for coin in COINS}


def _candle(coin: MarketCoin, day: date) -> dict[str, float]:
    close = coin.cap(day) * B / (1_000_000 * coin.coin_id)
    return {
        "open": close * 0.99,
        "high": close * 1.02,
        "low": close * 0.97,
        "close": close,
        "volume": close * 1000,
        "market_cap": coin.cap(day) * B,
    }


def _listing_rows() -> list[dict[str, object]]:
    """Every alive coin of every day, ranked by market cap (no ties by design): the file holds
    more than the listing depth, which the source trims."""
    rows = []
    for day in _days(DATA_FIRST, DATA_LAST):
        alive = [c for c in COINS if c.born <= day and (c.died is None or day <= c.died)]
        for rank, coin in enumerate(sorted(alive, key=lambda c: -c.cap(day)), start=1):
            candle = _candle(coin, day)
            supply = candle["market_cap"] / candle["close"]
            rows.append(
                {
                    "date": day.isoformat(),
                    "coin_id": coin.coin_id,
                    "ticker": coin.ticker,
                    "name": coin.ticker.title(),
                    "slug": coin.ticker.lower(),
                    "rank": rank,
                    "price": repr(candle["close"]),
                    "market_cap": repr(candle["market_cap"]),
                    "volume_24h": repr(candle["volume"]),
                    "circulating_supply": repr(supply),
                    "total_supply": repr(supply) if coin.coin_id % 2 else "",
                    "max_supply": "",
                }
            )
    return rows


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_market(directory: Path, *, listings: bool = True) -> None:
    """coins.csv (with each coin's life), daily/<id>.csv and daily/<TICKER>.csv, listings.csv."""
    _write_csv(
        directory / "coins.csv",
        [
            {
                "coin_id": c.coin_id,
                "ticker": c.ticker,
                "name": c.ticker.title(),
                "slug": c.ticker.lower(),
                "rank": c.coin_id,
                "is_active": "false" if c.died else "true",
                "first_historical_day": c.born.isoformat(),
                "last_historical_day": (c.died or DATA_LAST).isoformat(),
            }
            for c in COINS
        ],
    )
    for coin in (c for c in COINS if c.files):
        rows = [
            {"date": day.isoformat()} | {k: repr(v) for k, v in _candle(coin, day).items()}
            for day in coin.days()
        ]
        _write_csv(directory / "daily" / f"{coin.coin_id}.csv", rows)
        _write_csv(directory / "daily" / f"{coin.ticker}.csv", rows)
    if listings:
        _write_csv(directory / "listings.csv", _listing_rows())


# The reference: plain Python over the files' contents, the rules as the issue states them.


def _read_listing(directory: Path) -> dict[date, dict[int, int]]:
    """The listing file trimmed to the depth: day -> {coin id: rank}."""
    listing: dict[date, dict[int, int]] = {}
    with (directory / "listings.csv").open() as file:
        for row in csv.DictReader(file):
            if int(row["rank"]) <= DEPTH:
                listing.setdefault(date.fromisoformat(row["date"]), {})[int(row["coin_id"])] = int(
                    row["rank"]
                )
    return listing


def _read_candle_days(directory: Path) -> dict[int, set[date]]:
    days = {}
    for coin in COINS:
        path = directory / "daily" / f"{coin.coin_id}.csv"
        if not path.is_file():
            days[coin.coin_id] = set()
            continue
        with path.open() as file:
            days[coin.coin_id] = {date.fromisoformat(row["date"]) for row in csv.DictReader(file)}
    return days


def expected_candles(
    listing: dict[date, dict[int, int]],
    published: dict[int, set[date]],
    runs: list[tuple[date, date]],
) -> set[tuple[int, date]]:
    """The (coin, day) candles stored after ``runs``, in order: each run stores, for every coin
    ranked TOP_N or better on one of its days, its candles from its first to its last listed
    day of the run, and the RSI_LOOKBACK_DAYS days before its first member day unless its
    candle of the day before the run is stored already."""
    stored: set[tuple[int, date]] = set()
    for first, last in runs:
        run_days = _days(first, last)
        for coin_id in sorted({c for d in run_days for c, r in listing.get(d, {}).items()}):
            member_days = [
                d for d in run_days if listing.get(d, {}).get(coin_id, DEPTH + 1) <= TOP_N
            ]
            if not member_days:
                continue
            listed = [d for d in run_days if coin_id in listing.get(d, {})]
            lookback = member_days[0] - timedelta(days=RSI_LOOKBACK_DAYS)
            if (coin_id, first - timedelta(days=1)) in stored:
                lookback = max(lookback, first)  # followed already: only the run's days
            wanted = set(_days(min(lookback, listed[0]), listed[-1]))
            stored |= {(coin_id, d) for d in wanted & published[coin_id]}
    return stored


# The runs, once for the module.


@dataclass(frozen=True)
class Stored:
    url: str
    source: Path
    after_backfill: set[tuple[int, date]]
    lookback_inserted: int  # the daily run's run_rows_inserted_before
    backfill_metadata: dict[str, object]  # of the backfill's historical_trade_data


def _candle_keys(url: str) -> set[tuple[int, date]]:
    with psycopg.connect(url) as conn:
        return set(conn.execute("SELECT coin_id, trade_date FROM historical_trade_data").fetchall())


def _settings(patch: pytest.MonkeyPatch, url: str, source: Path) -> None:
    patch.setenv(DATABASE_URL_ENV, url)
    patch.setenv("COINMARKET_SOURCE", f"csv:{source}")
    patch.setenv("COINMARKET_TICKERS", f"top:{TOP_N}")
    patch.setenv("COINMARKET_LISTING_DEPTH", str(DEPTH))


@pytest.fixture(scope="module")
def stored(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stored]:
    """currency_status, the backfill and the daily run of listings and candles; between the
    last two, one of BACK's stored lookback candles is altered."""
    source = tmp_path_factory.mktemp("universe") / "cmc"
    write_market(source)
    selection = ["historical_listings", "historical_trade_data"]
    with (
        module_database(server_url, "coinmarket_universe") as url,
        pytest.MonkeyPatch.context() as patch,
    ):
        _settings(patch, url, source)
        materialize_unpartitioned(["currency_status"])
        backfill = materialize_days(*map(str, BACKFILL), selection=selection)
        after_backfill = _candle_keys(url)
        with psycopg.connect(url) as conn:
            conn.execute(
                "UPDATE historical_trade_data SET volume = %s "
                "WHERE coin_id = 10 AND trade_date = %s",
                [TAMPERED_VOLUME, TAMPERED_DAY],
            )
        daily = materialize_days(*map(str, DAILY), selection=selection)
        inserted = _candle_metadata(daily)["run_rows_inserted_before"]
        yield Stored(url, source, after_backfill, int(inserted), _candle_metadata(backfill))


def _candle_metadata(result: ExecuteInProcessResult) -> dict[str, object]:
    """The run totals of historical_trade_data's materializations."""
    event = next(
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key.path[-1] == "historical_trade_data"
    )
    return {key: value.value for key, value in event.materialization.metadata.items()}


@pytest.fixture(scope="module")
def listing(stored: Stored) -> dict[date, dict[int, int]]:
    return _read_listing(stored.source)


@pytest.fixture(scope="module")
def published(stored: Stored) -> dict[int, set[date]]:
    return _read_candle_days(stored.source)


def _query(url: str, query: str, params: list[object] | None = None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_the_listings_of_the_run_days_are_stored_to_the_depth_by_rank(
    stored: Stored, listing: dict[date, dict[int, int]]
):
    rows = _query(
        stored.url, "SELECT trade_date, coin_id, rank FROM historical_listings ORDER BY 1, 3"
    )
    run_days = _days(*BACKFILL) + _days(*DAILY)
    expected = [
        (day, coin_id, rank)
        for day in run_days
        for coin_id, rank in sorted(listing[day].items(), key=lambda item: item[1])
    ]
    assert rows == expected
    assert {len(listing[day]) for day in run_days} == {DEPTH}  # the file holds more


def test_universe_membership_is_each_days_top_n_of_the_stored_listing(
    stored: Stored, listing: dict[date, dict[int, int]]
):
    rows = _query(stored.url, "SELECT trade_date, coin_id, rank FROM universe_membership")
    expected = {
        (day, coin_id, rank)
        for day in _days(*BACKFILL) + _days(*DAILY)
        for coin_id, rank in listing[day].items()
        if rank <= TOP_N
    }
    assert set(rows) == expected


def test_the_backfill_stores_each_members_listed_days_and_lookback(
    stored: Stored, listing: dict[date, dict[int, int]], published: dict[int, set[date]]
):
    assert stored.after_backfill == expected_candles(listing, published, [BACKFILL])


def test_the_daily_run_adds_the_re_entering_coins_lookback_without_replacing_stored_rows(
    stored: Stored, listing: dict[date, dict[int, int]], published: dict[int, set[date]]
):
    assert _candle_keys(stored.url) == expected_candles(listing, published, [BACKFILL, DAILY])
    # BACK's days between its two memberships (it was not listed then) came with its lookback.
    added = _candle_keys(stored.url) - stored.after_backfill
    back_before = {d for coin, d in added if coin == 10 and d < DAILY[0]}
    assert back_before == set(_days(date(2021, 1, 4), BACKFILL[1]))
    assert stored.lookback_inserted == len(back_before)
    (volume,) = _query(
        stored.url,
        "SELECT volume FROM historical_trade_data WHERE coin_id = 10 AND trade_date = %s",
        [TAMPERED_DAY],
    )[0]
    assert volume == TAMPERED_VOLUME


def test_a_coin_entering_mid_range_has_its_lookback_and_nothing_earlier(stored: Stored):
    first_member = min(
        day
        for (day,) in _query(
            stored.url, "SELECT trade_date FROM universe_membership WHERE coin_id = 4"
        )
    )
    assert BACKFILL[0] < first_member < BACKFILL[1]
    (first_candle,) = _query(
        stored.url, "SELECT min(trade_date) FROM historical_trade_data WHERE coin_id = 4"
    )[0]
    assert first_candle == first_member - timedelta(days=RSI_LOOKBACK_DAYS)
    assert first_candle < BACKFILL[0]


def test_a_coin_dying_mid_range_keeps_its_history_and_has_no_candle_after_death(stored: Stored):
    dead = BY_ID[5]
    days = [
        day
        for (day,) in _query(
            stored.url, "SELECT trade_date FROM historical_trade_data WHERE coin_id = 5 ORDER BY 1"
        )
    ]
    assert days[-1] == dead.died
    # A member from 2021-01-04, when BACK fell out.
    assert days[0] == date(2021, 1, 4) - timedelta(days=RSI_LOOKBACK_DAYS)
    assert days == _days(days[0], dead.died)
    (status,) = _query(
        stored.url,
        "SELECT is_active, last_historical_day FROM currency_status WHERE coin_id = 5",
    )
    assert status == (False, dead.died)


def test_candles_are_the_published_values_of_coins_named_by_the_listing(stored: Stored):
    rows = _query(
        stored.url,
        "SELECT coin_id, trade_date, ticker, open, high, low, close, volume, market_cap "
        "FROM historical_trade_data WHERE NOT (coin_id = 10 AND trade_date = %s)",
        [TAMPERED_DAY],
    )
    for coin_id, day, ticker, *values in rows:
        coin = BY_ID[coin_id]
        assert ticker == coin.ticker
        assert values == list(_candle(coin, day).values()), (coin_id, day)


def test_currency_status_holds_the_coin_map_never_listed_coins_too(stored: Stored):
    rows = _query(
        stored.url,
        "SELECT coin_id, ticker, is_active, first_historical_day FROM currency_status ORDER BY 1",
    )
    assert rows == [(c.coin_id, c.ticker, c.died is None, c.born) for c in COINS]


def test_latest_market_gives_each_coins_rank_on_its_newest_candles_day(
    stored: Stored, listing: dict[date, dict[int, int]]
):
    rows = _query(stored.url, "SELECT coin_id, trade_date, listing_rank FROM latest_market")
    newest = dict(
        _query(stored.url, "SELECT coin_id, max(trade_date) FROM historical_trade_data GROUP BY 1")
    )
    assert {(c, d) for c, d, _ in rows} == set(newest.items())
    assert {c: r for c, _, r in rows} == {c: listing[d].get(c) for c, d in newest.items()}
    assert newest[5] == BY_ID[5].died  # a dead coin's latest rank is its last listed one


def test_a_member_without_candles_at_the_source_is_no_error(
    stored: Stored, listing: dict[date, dict[int, int]]
):
    assert listing[GHOST_DAY][11] == 1
    assert not _query(stored.url, "SELECT 1 FROM historical_trade_data WHERE coin_id = 11")
    members = _query(
        stored.url,
        "SELECT count(DISTINCT coin_id) FROM universe_membership "
        "WHERE trade_date BETWEEN %s AND %s",
        list(BACKFILL),
    )[0][0]
    assert stored.backfill_metadata["run_members"] == members
    assert stored.backfill_metadata["run_members_without_candles"] == 1
