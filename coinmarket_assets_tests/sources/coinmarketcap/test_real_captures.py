"""Contract test: real data-api answers captured from CoinMarketCap parse into the candles
CoinMarketCap publishes, when ../shared/data/cmc is present."""

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coinmarket_assets.sources.coinmarketcap.data_api import quotes_to_candles
from coinmarket_assets.sources.validation import validated_candles

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "cmc"
DAILY_BTC = SHARED / "api" / "fcce7d762bbee082f65c377f184cd541.json"

pytestmark = pytest.mark.skipif(
    not DAILY_BTC.is_file(), reason=f"captured CoinMarketCap answers not present at {DAILY_BTC}"
)


def test_a_captured_daily_history_parses_into_the_published_candles():
    payload = json.loads(DAILY_BTC.read_text())
    assert payload["status"]["error_code"] == "0"
    quotes = payload["data"]["quotes"]
    candles = validated_candles(
        quotes_to_candles(quotes, 1, "BTC"), date(2018, 12, 4), date(2020, 1, 7)
    )
    assert len(candles) == 400
    assert candles["trade_date"].iloc[0] == pd.Timestamp("2018-12-04")
    published = pd.read_csv(SHARED / "daily" / "BTC.csv", parse_dates=["date"]).set_index("date")
    expected = published.loc[candles["trade_date"]]
    for field in ["open", "high", "low", "close", "volume", "market_cap"]:
        np.testing.assert_allclose(candles[field], expected[field], rtol=1e-7, err_msg=field)
