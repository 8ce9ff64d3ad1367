"""Validation on real CoinMarketCap data from ../shared/data/cmc, when that folder is present.

The project's own tests never need it; these skip, saying so, where it is absent.
"""

from pathlib import Path

import pandas as pd
import pytest

from coinmarket_assets_tests.dagster_runs import (
    materialize_days,
    materialize_unpartitioned,
    read_table,
)
from coinmarket_assets_tests.table_checks import assert_derived_tables_match_references
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import SyntheticMarket

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmc"
TICKERS = "BTC,LTC,XRP,DOGE,XMR,USDT,XLM,XEM,ETH"
FIRST, LAST = "2013-12-01", "2016-06-30"

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / "coins.csv").is_file(),
    reason=f"real CoinMarketCap data not present at {SHARED_DATA}",
)


@pytest.fixture
def real_history(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COINMARKET_SOURCE", f"csv:{SHARED_DATA}")
    monkeypatch.setenv("COINMARKET_TICKERS", TICKERS)
    materialize_unpartitioned(["currency_status"])
    materialize_days(FIRST, LAST)
    return database_url


def test_real_history_matches_talib_and_pandas_references(real_history: str):
    assert_derived_tables_match_references(FIRST, LAST)


def test_real_anomalies_are_stored_as_published(real_history: str):
    stored = read_table("historical_trade_data")
    by_coin = {ticker: frame.set_index("trade_date") for ticker, frame in stored.groupby("ticker")}
    assert pd.Timestamp("2014-06-05") not in by_coin["XMR"].index  # a real gap stays a gap
    assert by_coin["USDT"].loc["2015-02-27":"2015-03-01"].empty
    assert (by_coin["BTC"].loc["2013-12-01":"2013-12-26", "volume"] == 0).all()  # zero volumes
    assert by_coin["DOGE"]["close"].min() < 1e-4  # scientific notation in the source
    usdt = by_coin["USDT"].loc["2015-03-06":"2016-06-30"]
    flat = (
        (usdt["open"] == usdt["high"])
        & (usdt["low"] == usdt["close"])
        & (usdt["open"] == usdt["close"])
    )
    assert flat.sum() > 300  # flat candles kept as published


def test_real_history_served_by_the_local_coinmarketcap_arrives_intact(
    database_url: str, monkeypatch: pytest.MonkeyPatch
):
    market = SyntheticMarket.from_csv(SHARED_DATA, ["BTC", "XMR", "DOGE"])
    with FakeCoinMarketCap(market) as server:  # pages of 400 days back to 2013
        monkeypatch.setenv("COINMARKET_SOURCE", "coinmarketcap")
        monkeypatch.setenv("COINMARKET_CMC_BASE_URL", server.data_api_url)
        monkeypatch.setenv("COINMARKET_CMC_RATE_LIMIT", "100")
        monkeypatch.setenv("COINMARKET_TICKERS", "BTC,XMR,DOGE")
        materialize_days("2013-04-27", "2021-07-06", selection=["historical_trade_data"])
    stored = read_table("historical_trade_data")
    expected = market.candles()
    expected = expected[expected["trade_date"] <= "2021-07-06"]
    expected = expected.sort_values(["coin_id", "trade_date"], ignore_index=True)
    pd.testing.assert_frame_equal(
        stored[expected.columns], expected, check_exact=True, check_dtype=False
    )
