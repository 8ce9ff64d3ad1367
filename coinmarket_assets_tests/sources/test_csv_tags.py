"""Tags in csv: files: the optional ``tags`` column of coins.csv (currency_status) and of
listings.csv (each day's listing), and the synthetic writers that emit them."""

from datetime import date
from pathlib import Path

import pandas as pd

from coinmarket_assets.sources.base import Coin
from coinmarket_assets.sources.csv_source import CsvSource
from coinmarket_testkit.synthetic import (
    STABLECOIN,
    WRAPPED_TOKENS,
    SyntheticMarket,
    default_market,
    whole_market,
)


def _coins(source: CsvSource) -> dict[int, object]:
    frame = source.coin_map()
    return {
        int(c): (t if isinstance(t, str) else None)
        for c, t in zip(frame.coin_id, frame.tags, strict=True)
    }


def test_coins_csv_tags_are_stored_sorted_lower_case_and_empty_as_none(tmp_path: Path):
    market = default_market()
    market.write_csv(tmp_path)
    coins = pd.read_csv(tmp_path / "coins.csv")
    coins["tags"] = ["", "Wrapped-Tokens;defi", "stablecoin; asset-backed-stablecoin", "", ""]
    coins.to_csv(tmp_path / "coins.csv", index=False)
    source = CsvSource(tmp_path)
    expected = {101: None, 102: "defi;wrapped-tokens", 103: "asset-backed-stablecoin;stablecoin"}
    assert _coins(source) == expected | {104: None, 105: None}
    status = source.coin_status([Coin(103, "GAMMA", "Gamma Dollar", "gamma-dollar")])
    assert status.loc[0, "tags"] == expected[103]


def test_where_coins_csv_is_silent_a_coin_has_the_tags_of_its_last_listed_day(tmp_path: Path):
    market = default_market().with_tags({"BETA": (WRAPPED_TOKENS,)})
    market.write_csv(tmp_path)
    market.write_listings_csv(tmp_path)
    listings = pd.read_csv(tmp_path / "listings.csv", keep_default_na=False)
    beta = listings["coin_id"] == 102
    listings.loc[beta & (listings["date"] == listings["date"].max()), "tags"] = "defi"
    listings.to_csv(tmp_path / "listings.csv", index=False)
    coins = pd.read_csv(tmp_path / "coins.csv", keep_default_na=False)
    coins.loc[coins["coin_id"] == 102, "tags"] = ""  # silent about BETA
    coins.to_csv(tmp_path / "coins.csv", index=False)
    assert _coins(CsvSource(tmp_path))[102] == "defi"


def test_a_tagged_synthetic_market_writes_tags_that_the_csv_source_reads_back(tmp_path: Path):
    market = default_market().with_tags({"GAMMA": (STABLECOIN,), "DELTA": (WRAPPED_TOKENS, "defi")})
    market.write_csv(tmp_path)
    market.write_listings_csv(tmp_path)
    source = CsvSource(tmp_path)
    assert _coins(source) == {
        101: None,
        102: None,
        103: "stablecoin",
        104: "defi;wrapped-tokens",
        105: None,
    }
    listed = source.historical_listings(date(2020, 5, 1), date(2020, 5, 3), 10)
    by_coin = {c: t for c, t in zip(listed.coin_id, listed.tags, strict=True) if isinstance(t, str)}
    assert by_coin == {103: "stablecoin", 104: "defi;wrapped-tokens"}
    assert len(listed) == 15  # every coin listed on each of the three days
    assert SyntheticMarket.from_csv(tmp_path).coin("DELTA").tags == (WRAPPED_TOKENS, "defi")


def test_an_untagged_market_writes_no_tags_column(tmp_path: Path):
    default_market().write_csv(tmp_path)
    default_market().write_listings_csv(tmp_path)
    whole_market(20, date(2021, 1, 1), 10, seed=3).write_csv(tmp_path / "whole")
    for path in [tmp_path / "coins.csv", tmp_path / "whole" / "coins.csv"]:
        assert "tags" not in pd.read_csv(path).columns
    for path in [tmp_path / "listings.csv", tmp_path / "whole" / "listings.csv"]:
        assert "tags" not in pd.read_csv(path).columns


def test_whole_market_tags_reach_coins_csv_and_every_listing_row(tmp_path: Path):
    market = whole_market(30, date(2021, 1, 1), 20, seed=5, tags={3: (STABLECOIN,), 7: ("a", "b")})
    market.write_csv(tmp_path, listing_depth=10)
    source = CsvSource(tmp_path)
    assert {c: t for c, t in _coins(source).items() if t} == {3: "stablecoin", 7: "a;b"}
    listed = source.historical_listings(date(2021, 1, 1), date(2021, 1, 20), 10)
    expected = {3: "stablecoin", 7: "a;b"}
    for coin_id, tags in zip(listed["coin_id"], listed["tags"], strict=True):
        assert (tags if isinstance(tags, str) else None) == expected.get(coin_id)
    assert set(listed["coin_id"]) & {3, 7}  # the tagged coins are listed on some day
    assert market.to_market().coin(market.tickers[2]).tags == (STABLECOIN,)
