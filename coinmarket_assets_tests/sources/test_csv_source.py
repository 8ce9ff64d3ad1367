from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from coinmarket_assets.sources import SourceError, open_source, resolve_universe
from coinmarket_assets.sources.base import UnknownTickersError
from coinmarket_assets.sources.validation import InvalidCandlesError
from coinmarket_testkit.synthetic import SyntheticMarket


def _source(directory: Path):
    return open_source(f"csv:{directory}")


def _rewrite_cell(path: Path, day: str, column: str, value: str) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[frame["date"] == day, column] = value
    frame.to_csv(path, index=False)


def test_candles_are_read_exactly_as_published(csv_source: Path, market: SyntheticMarket):
    source = _source(csv_source)
    coins = resolve_universe(source.listing(), market.tickers)
    candles = source.checked_candles(coins, date(2020, 1, 1), date(2020, 12, 31)).candles
    expected = market.candles().sort_values(["coin_id", "trade_date"], ignore_index=True)
    pd.testing.assert_frame_equal(candles, expected, check_exact=True, check_dtype=False)
    assert (candles["volume"] == 0).sum() == 21  # zeros are kept as published
    assert candles.loc[candles["ticker"] == "DELTA", "close"].max() < 1e-3  # 1e-05 notation parsed


def test_only_the_requested_days_are_returned(csv_source: Path, market: SyntheticMarket):
    source = _source(csv_source)
    coins = resolve_universe(source.listing(), ["BETA"])
    candles = source.checked_candles(coins, date(2020, 3, 1), date(2020, 3, 7)).candles
    assert list(candles["trade_date"].dt.strftime("%Y-%m-%d")) == [
        f"2020-03-0{d}" for d in range(1, 8)
    ]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("close", "nan", "close is not a number ('nan')"),
        ("close", "", "close is missing"),
        ("open", "abc", "open is not a number ('abc')"),
        ("high", "inf", "high is infinite"),
        ("low", "-1.5", "low is negative (-1.5)"),
        ("volume", "-3", "volume is negative (-3.0)"),
        ("high", "0.5", "high 0.5 is below low"),
    ],
)
def test_an_invalid_value_fails_naming_coin_day_and_field(
    csv_source: Path, column: str, value: str, problem: str
):
    _rewrite_cell(csv_source / "daily" / "BETA.csv", "2020-02-03", column, value)
    source = _source(csv_source)
    coins = resolve_universe(source.listing(), ["ALPHA", "BETA"])
    with pytest.raises(InvalidCandlesError) as error:
        source.checked_candles(coins, date(2020, 2, 1), date(2020, 2, 5))
    assert f"BETA 2020-02-03: {problem}" in str(error.value)


def test_an_invalid_value_outside_the_requested_days_does_not_matter(csv_source: Path):
    _rewrite_cell(csv_source / "daily" / "BETA.csv", "2020-02-03", "close", "oops")
    source = _source(csv_source)
    coins = resolve_universe(source.listing(), ["BETA"])
    assert len(source.checked_candles(coins, date(2020, 2, 4), date(2020, 2, 5)).candles) == 2


def test_duplicate_days_fail(csv_source: Path):
    path = csv_source / "daily" / "GAMMA.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[10]]) + "\n")
    source = _source(csv_source)
    with pytest.raises(
        InvalidCandlesError, match="GAMMA 2020-01-10: trade_date appears more than once"
    ):
        source.checked_candles(
            resolve_universe(source.listing(), ["GAMMA"]), date(2020, 1, 1), date(2020, 2, 1)
        )


def test_unparseable_dates_fail_naming_the_coin(csv_source: Path):
    _rewrite_cell(csv_source / "daily" / "ALPHA.csv", "2020-01-05", "date", "05-01-2020")
    source = _source(csv_source)
    with pytest.raises(
        SourceError, match=r"ALPHA .*dates must look like 2013-04-27, got \['05-01-2020'\]"
    ):
        source.checked_candles(
            resolve_universe(source.listing(), ["ALPHA"]), date(2020, 1, 1), date(2020, 1, 9)
        )


def test_a_missing_daily_file_is_named(csv_source: Path):
    (csv_source / "daily" / "BETA.csv").unlink()
    source = _source(csv_source)
    with pytest.raises(SourceError, match="no daily file for BETA"):
        source.checked_candles(
            resolve_universe(source.listing(), ["BETA"]), date(2020, 1, 1), date(2020, 1, 9)
        )


def test_unknown_tickers_are_all_named(csv_source: Path):
    listing = _source(csv_source).listing()
    with pytest.raises(UnknownTickersError, match=r"Unknown tickers .*: NOPE, ZZZ"):
        resolve_universe(listing, ["ALPHA", "NOPE", "ZZZ"])


def test_a_duplicate_ticker_resolves_to_the_higher_ranked_coin():
    listing = pd.DataFrame(
        {
            "coin_id": [7, 8],
            "ticker": ["DUP", "DUP"],
            "coin_name": ["Small", "Big"],
            "slug": ["small", "big"],
            "rank": pd.array([900, 12], dtype="Int64"),
        }
    )
    assert resolve_universe(listing, ["dup"])[0].coin_id == 8


def test_coin_status_reports_the_newest_market_cap(csv_source: Path, market: SyntheticMarket):
    source = _source(csv_source)
    status = source.coin_status(resolve_universe(source.listing(), ["LATE"]))
    newest = market.coin("LATE").candles.iloc[-1]
    assert status.loc[0, "market_cap"] == newest["market_cap"]
    assert status.loc[0, "last_update"] == (newest["date"] + pd.Timedelta(days=1)).tz_localize(
        "UTC"
    )
    assert (status.loc[0, "coin_id"], status.loc[0, "slug"]) == (105, "late-listing")
