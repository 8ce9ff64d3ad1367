"""The csv: source's whole market: listings.csv, the coin map with dead coins, candles by id.

Each rule is checked against plain Python over the files written (the csv module), not against
the code under test."""

import csv
import random
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from coinmarket_assets.sources import SourceError, csv_listings, open_source
from coinmarket_assets.sources.base import Coin, MissingCandlesError, NoHistoricalListingsError
from coinmarket_assets.sources.validation import InvalidListingsError
from coinmarket_testkit.synthetic import whole_market

FIRST_DAY = date(2021, 3, 1)
DAYS = 40


@pytest.fixture
def market_dir(tmp_path: Path) -> Path:
    """A 24-coin market over 40 days (some born late, a quarter dying), listings shuffled."""
    directory = tmp_path / "market"
    whole_market(24, FIRST_DAY, DAYS, seed=5, first_id=900).write_csv(directory)
    lines = (directory / "listings.csv").read_text().splitlines()
    body = lines[1:]
    random.Random(1).shuffle(body)
    (directory / "listings.csv").write_text("\n".join([lines[0], *body]) + "\n")
    return directory


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _expected_listing(rows: list[dict[str, str]], first: str, last: str, depth: int) -> list:
    by_day: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if first <= row["date"] <= last:
            by_day.setdefault(row["date"], []).append(row)
    expected = []
    for day in sorted(by_day):
        ranked = sorted(by_day[day], key=lambda r: (int(r["rank"]), int(r["coin_id"])))
        expected += [(day, int(r["coin_id"]), int(r["rank"]), float(r["price"])) for r in ranked]
        del expected[len(expected) - len(ranked) + min(depth, len(ranked)) :]
    return expected


def _got(listing: pd.DataFrame) -> list:
    return [(f"{r.trade_date:%Y-%m-%d}", r.coin_id, r.rank, r.price) for r in listing.itertuples()]


@pytest.mark.parametrize("depth", [1, 7, 1000])
def test_each_day_keeps_its_best_ranked_coins_whatever_the_file_order(market_dir: Path, depth: int):
    path = market_dir / "listings.csv"
    rows = _rows(path)
    # A tie in rank: the lower coin id comes first.
    first, second = sorted(
        (r for r in rows if r["date"] == "2021-03-20" and r["rank"] in ("1", "2")),
        key=lambda r: int(r["coin_id"]),
    )
    first["rank"], second["rank"] = "2", "2"
    _write_rows(path, rows)
    listing = open_source(f"csv:{market_dir}").historical_listings(
        date(2021, 3, 5), date(2021, 4, 9), depth
    )
    expected = _expected_listing(rows, "2021-03-05", "2021-04-09", depth)
    assert _got(listing) == expected
    assert len({d for d, *_ in expected}) == 36


@pytest.mark.parametrize("days", [1, 7])
def test_batches_are_whole_days_in_order_that_add_up_to_the_listing(market_dir: Path, days: int):
    rows = _rows(market_dir / "listings.csv")
    source = open_source(f"csv:{market_dir}")
    batches = list(source.historical_listing_batches(date(2021, 3, 5), date(2021, 4, 9), 5, days))
    assert len(batches) == -(-36 // days)
    for number, batch in enumerate(batches):
        start = pd.Timestamp(2021, 3, 5) + pd.Timedelta(days=number * days)
        assert batch["trade_date"].between(start, start + pd.Timedelta(days=days - 1)).all()
    got = _got(pd.concat(batches, ignore_index=True))
    assert got == _expected_listing(rows, "2021-03-05", "2021-04-09", 5)


def test_a_bad_row_in_a_later_batch_fails_when_that_batch_is_read(market_dir: Path):
    path = market_dir / "listings.csv"
    rows = _rows(path)
    spoiled = min((r for r in rows if r["date"] == "2021-03-20"), key=lambda r: int(r["rank"]))
    spoiled["price"] = "-1"
    _write_rows(path, rows)
    batches = open_source(f"csv:{market_dir}").historical_listing_batches(
        date(2021, 3, 5), date(2021, 4, 9), 5, 7
    )
    assert len(next(batches)) == 7 * 5  # 03-05..03-11 are good
    next(batches)
    with pytest.raises(InvalidListingsError, match=f"coin {spoiled['coin_id']} .* 2021-03-20"):
        next(batches)


def test_tags_are_read_lower_cased_and_sorted(market_dir: Path):
    path = market_dir / "listings.csv"
    rows = _rows(path)
    for row in rows:
        row["tags"] = "Stablecoin; defi" if row["rank"] == "1" else ""
    _write_rows(path, rows)
    listing = open_source(f"csv:{market_dir}").historical_listings(
        date(2021, 3, 10), date(2021, 3, 10), 2
    )
    assert listing["tags"].iloc[0] == "defi;stablecoin"
    assert pd.isna(listing["tags"].iloc[1])


def test_optional_values_may_be_empty_and_other_columns_are_ignored(market_dir: Path):
    path = market_dir / "listings.csv"
    rows = _rows(path)
    for row in rows:
        row["notes"] = "mineable"
    top = min((r for r in rows if r["date"] == "2021-03-10"), key=lambda r: int(r["rank"]))
    for field in ["market_cap", "volume_24h", "circulating_supply", "total_supply", "max_supply"]:
        top[field] = ""
    _write_rows(path, rows)
    listing = open_source(f"csv:{market_dir}").historical_listings(
        date(2021, 3, 10), date(2021, 3, 10), 1
    )
    assert listing.loc[0, "coin_id"] == int(top["coin_id"])
    assert listing.loc[0, ["market_cap", "volume_24h", "max_supply"]].isna().all()
    assert (listing.loc[0, "ticker"], listing.loc[0, "coin_name"]) == (top["ticker"], top["name"])


def _spoil(path: Path, day: str, rank: int, column: str, value: str) -> dict[str, str]:
    rows = _rows(path)
    row = next(r for r in rows if r["date"] == day and int(r["rank"]) == rank)
    label = dict(row)
    row[column] = value
    _write_rows(path, rows)
    return label


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("rank", "0", "rank is not a whole number >= 1 (0)"),
        ("rank", "2.5", "rank is not a whole number >= 1 (2.5)"),
        ("rank", "", "rank is missing"),
        ("price", "0", "price is not positive (0.0)"),
        ("price", "", "price is missing"),
        ("price", "nan", "price is not a number ('nan')"),
        ("market_cap", "-1", "market_cap is negative (-1.0)"),
        ("volume_24h", "abc", "volume_24h is not a number ('abc')"),
        ("total_supply", "inf", "total_supply is infinite"),
        ("slug", "", "slug is missing"),
    ],
)
def test_a_bad_row_fails_naming_coin_day_and_field(
    market_dir: Path, column: str, value: str, problem: str
):
    row = _spoil(market_dir / "listings.csv", "2021-03-20", 2, column, value)
    source = open_source(f"csv:{market_dir}")
    with pytest.raises(InvalidListingsError) as error:
        source.historical_listings(date(2021, 3, 19), date(2021, 3, 21), 5)
    assert f"coin {row['coin_id']} ({row['ticker']}) 2021-03-20: {problem}" in str(error.value)
    assert "nothing was written" in str(error.value)


def test_a_coin_twice_on_a_day_fails(market_dir: Path):
    path = market_dir / "listings.csv"
    rows = _rows(path)
    twice = next(r for r in rows if r["date"] == "2021-03-20")
    _write_rows(path, [*rows, dict(twice, rank="99")])
    with pytest.raises(InvalidListingsError, match="appears more than once that day") as error:
        open_source(f"csv:{market_dir}").historical_listings(
            date(2021, 3, 20), date(2021, 3, 20), 3
        )
    assert f"coin {twice['coin_id']} ({twice['ticker']}) 2021-03-20" in str(error.value)


def test_bad_values_outside_the_kept_rows_do_not_matter(market_dir: Path):
    path = market_dir / "listings.csv"
    _spoil(path, "2021-03-25", 1, "price", "oops")  # another day
    _spoil(path, "2021-03-20", 6, "market_cap", "-5")  # below the depth
    listing = open_source(f"csv:{market_dir}").historical_listings(
        date(2021, 3, 20), date(2021, 3, 20), 5
    )
    assert list(listing["rank"]) == [1, 2, 3, 4, 5]


def test_a_date_that_does_not_parse_fails_naming_it(market_dir: Path):
    row = _spoil(market_dir / "listings.csv", "2021-03-20", 3, "date", "20/03/2021")
    with pytest.raises(SourceError, match=r"dates must look like 2013-04-27, got \[.*20/03/2021"):
        open_source(f"csv:{market_dir}").historical_listings(date(2021, 3, 1), date(2021, 3, 2), 5)
    assert row["coin_id"]


def test_an_absent_listings_file_fails_naming_it_and_the_mode(market_dir: Path):
    (market_dir / "listings.csv").unlink()
    with pytest.raises(
        NoHistoricalListingsError, match=r"listings\.csv does not exist; COINMARKET_TICKERS=top:N"
    ):
        open_source(f"csv:{market_dir}").historical_listings(date(2021, 3, 1), date(2021, 3, 2), 5)


def test_the_html_source_has_no_listings(market_dir: Path):
    with pytest.raises(NoHistoricalListingsError, match=r"html source: .*no daily listings.*top:N"):
        open_source(f"html:{market_dir}").historical_listings(date(2021, 3, 1), date(2021, 3, 2), 5)


def _map_by_id(directory: Path) -> dict[int, dict]:
    frame = open_source(f"csv:{directory}").coin_map()
    return {int(r["coin_id"]): r for r in frame.to_dict("records")}


def _day(value: object) -> str | None:
    return None if pd.isna(value) else f"{value:%Y-%m-%d}"


def test_the_coin_map_takes_coin_lives_from_coins_csv(market_dir: Path):
    rows = _rows(market_dir / "coins.csv")
    rows[0]["is_active"] = "0" if rows[0]["is_active"] == "1" else "1"  # coins.csv wins
    _write_rows(market_dir / "coins.csv", rows)
    coin_map = _map_by_id(market_dir)
    assert sorted(coin_map) == sorted(int(r["coin_id"]) for r in rows)
    for row in rows:
        coin = coin_map[int(row["coin_id"])]
        assert bool(coin["is_active"]) == (row["is_active"] == "1")
        assert _day(coin["first_historical_day"]) == row["first_historical_day"]
        assert _day(coin["last_historical_day"]) == row["last_historical_day"]
        assert (coin["ticker"], coin["slug"]) == (row["ticker"], row["slug"])
    assert "0" in {r["is_active"] for r in rows[1:]}  # the market has dead coins


@pytest.mark.parametrize("block_bytes", [None, 4096])
def test_the_coin_map_derives_lives_from_the_listings(
    tmp_path: Path, block_bytes: int | None, monkeypatch: pytest.MonkeyPatch
):
    if block_bytes is not None:  # the file read in many blocks, each coin's days split up
        monkeypatch.setattr(csv_listings, "_BLOCK_BYTES", block_bytes)
    directory = tmp_path / "market"
    whole_market(24, FIRST_DAY, DAYS, seed=8).write_csv(directory, life_columns=False)
    lines = (directory / "listings.csv").read_text().splitlines()
    body = lines[1:]
    random.Random(2).shuffle(body)
    (directory / "listings.csv").write_text("\n".join([lines[0], *body]) + "\n")
    coins = _rows(directory / "coins.csv")
    dropped = coins.pop()  # a coin known only from the listings
    _write_rows(directory / "coins.csv", coins)
    listed: dict[int, list[dict[str, str]]] = {}
    for row in _rows(directory / "listings.csv"):
        listed.setdefault(int(row["coin_id"]), []).append(row)
    newest = max(r["date"] for rows in listed.values() for r in rows)
    coin_map = _map_by_id(directory)
    assert sorted(coin_map) == sorted(listed)
    for coin_id, rows in listed.items():
        days = sorted(r["date"] for r in rows)
        coin = coin_map[coin_id]
        assert (_day(coin["first_historical_day"]), _day(coin["last_historical_day"])) == (
            days[0],
            days[-1],
        )
        assert bool(coin["is_active"]) == (days[-1] == newest)
        on_newest = [r for r in rows if r["date"] == newest]
        expected_rank = int(on_newest[0]["rank"]) if on_newest else None
        assert (None if pd.isna(coin["rank"]) else int(coin["rank"])) == expected_rank
    assert coin_map[int(dropped["coin_id"])]["slug"] == dropped["slug"]
    assert not all(coin_map[c]["is_active"] for c in listed)  # some died


def test_coin_status_reports_lives_from_the_candle_files_without_a_coin_map(csv_source: Path):
    source = open_source(f"csv:{csv_source}")
    status = source.coin_status([Coin(105, "LATE", "Late Listing", "late-listing")])
    days = [r["date"] for r in _rows(csv_source / "daily" / "LATE.csv")]
    assert _day(status.loc[0, "first_historical_day"]) == min(days)
    assert _day(status.loc[0, "last_historical_day"]) == max(days)
    assert pd.isna(status.loc[0, "is_active"])


def test_candles_are_read_by_id_before_ticker(market_dir: Path):
    coins = _rows(market_dir / "coins.csv")
    first, second = coins[8], coins[9]
    assert first["ticker"] == second["ticker"]  # two coins, one symbol
    daily = market_dir / "daily"
    # A ticker file holding other candles is ignored for coins with a file of their own.
    (daily / f"{first['ticker']}.csv").write_text(
        (daily / f"{coins[0]['coin_id']}.csv").read_text()
    )
    source = open_source(f"csv:{market_dir}")
    for row in (first, second):
        coin = Coin(int(row["coin_id"]), row["ticker"], row["name"], row["slug"])
        got = source.checked_candles([coin], FIRST_DAY, date(2021, 12, 31)).candles
        expected = _rows(daily / f"{row['coin_id']}.csv")
        assert [f"{d:%Y-%m-%d}" for d in got["trade_date"]] == [r["date"] for r in expected]
        assert list(got["close"]) == [float(r["close"]) for r in expected]


def test_coins_without_candle_files_are_all_named(market_dir: Path):
    coins = [
        Coin(int(r["coin_id"]), r["ticker"], r["name"], r["slug"])
        for r in _rows(market_dir / "coins.csv")
    ]
    for coin in coins[2:4]:
        (market_dir / "daily" / f"{coin.coin_id}.csv").unlink()
    source = open_source(f"csv:{market_dir}")
    with pytest.raises(MissingCandlesError) as error:
        source.checked_candles(coins, FIRST_DAY, date(2021, 12, 31))
    assert error.value.coins == coins[2:4]
    for coin in coins[2:4]:
        assert f"no daily file for {coin.ticker} (id {coin.coin_id})" in str(error.value)
    # The asset may leave them out (top:N mode) and ask again.
    rest = [coin for coin in coins if coin not in error.value.coins]
    assert len(source.checked_candles(rest, FIRST_DAY, date(2021, 12, 31)).candles) > 0
