"""The generated whole market, checked in plain Python over the files it writes."""

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest

from coinmarket_testkit.synthetic import whole_market

FIRST_DAY = date(2019, 1, 1)
DAYS = 120
COINS = 40


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("whole") / "market"
    whole_market(COINS, FIRST_DAY, DAYS, seed=11, first_id=500).write_csv(directory)
    return directory


@pytest.fixture(scope="module")
def candles(written: Path) -> dict[int, list[dict[str, str]]]:
    coins = _rows(written / "coins.csv")
    return {int(c["coin_id"]): _rows(written / "daily" / f"{c['coin_id']}.csv") for c in coins}


def test_listings_rank_each_day_s_candles_by_market_cap(written: Path, candles: dict):
    by_day: dict[str, list[tuple[float, int, float]]] = {}
    for coin_id, rows in candles.items():
        for row in rows:
            cap = float(row["market_cap"])
            by_day.setdefault(row["date"], []).append((cap, coin_id, float(row["close"])))
    expected = [
        (day, str(coin_id), str(rank), close, cap)
        for day in sorted(by_day)
        for rank, (cap, coin_id, close) in enumerate(
            sorted(by_day[day], key=lambda t: (-t[0], t[1])), start=1
        )
    ]
    got = [
        (r["date"], r["coin_id"], r["rank"], float(r["price"]), float(r["market_cap"]))
        for r in _rows(written / "listings.csv")
    ]
    assert got == expected


def test_a_quarter_die_and_are_never_seen_after_their_death(written: Path, candles: dict):
    last_day = f"{FIRST_DAY + timedelta(days=DAYS - 1):%Y-%m-%d}"
    coins = _rows(written / "coins.csv")
    dead = [c for c in coins if c["is_active"] == "0"]
    assert len(dead) == COINS // 4
    listed_days: dict[str, set[str]] = {}
    for row in _rows(written / "listings.csv"):
        listed_days.setdefault(row["coin_id"], set()).add(row["date"])
    for coin in coins:
        days = [r["date"] for r in candles[int(coin["coin_id"])]]
        assert (days[0], days[-1]) == (coin["first_historical_day"], coin["last_historical_day"])
        assert (days[-1] < last_day) == (coin["is_active"] == "0")
        assert listed_days[coin["coin_id"]] == set(days)


def test_coins_are_born_over_the_period_with_continuous_consistent_candles(candles: dict):
    births = {rows[0]["date"] for rows in candles.values()}
    assert len(births) > COINS // 2
    for rows in candles.values():
        days = [date.fromisoformat(r["date"]) for r in rows]
        assert days == [days[0] + timedelta(days=n) for n in range(len(days))]
        for r in rows:
            low, high = float(r["low"]), float(r["high"])
            assert 0 < low <= min(float(r["open"]), float(r["close"]))
            assert max(float(r["open"]), float(r["close"])) <= high


def test_tickers_repeat_so_daily_files_are_named_by_id(written: Path):
    tickers = [c["ticker"] for c in _rows(written / "coins.csv")]
    assert len(set(tickers)) < len(tickers)
    assert not any((written / "daily" / f"{t}.csv").exists() for t in tickers)


def test_gaps_and_listing_depth_are_parameters(tmp_path: Path):
    market = whole_market(30, FIRST_DAY, 80, seed=3, gap_share=0.1)
    market.write_csv(tmp_path, listing_depth=5)
    coins = _rows(tmp_path / "coins.csv")
    gaps = 0
    for coin in coins:
        rows = _rows(tmp_path / "daily" / f"{coin['coin_id']}.csv")
        days = [date.fromisoformat(r["date"]) for r in rows]
        gaps += (days[-1] - days[0]).days + 1 - len(days)
        assert (rows[0]["date"], rows[-1]["date"]) == (
            coin["first_historical_day"],
            coin["last_historical_day"],
        )
    assert gaps > 0
    per_day: dict[str, list[int]] = {}
    for row in _rows(tmp_path / "listings.csv"):
        per_day.setdefault(row["date"], []).append(int(row["rank"]))
    assert all(ranks == list(range(1, len(ranks) + 1)) for ranks in per_day.values())
    assert max(len(ranks) for ranks in per_day.values()) == 5
