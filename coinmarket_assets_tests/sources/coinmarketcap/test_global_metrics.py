"""The live client's global metrics against the local CoinMarketCap over real sockets, checked
against a plain-Python reading of the server's market; and the real captured answers, when
../shared/data/cmc is present: their shape, and which day a quote belongs to."""

import csv
import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from coinmarket_assets.sources.base import SourceError
from coinmarket_assets.sources.coinmarketcap import global_metrics
from coinmarket_assets.sources.coinmarketcap.source import CoinMarketCapSource
from coinmarket_assets_tests.sources.coinmarketcap.conftest import fast_settings
from coinmarket_assets_tests.sources.global_metrics_reference import (
    assert_same,
    market_with_btc_and_eth,
    reference_from_market,
)
from coinmarket_testkit.data_api import global_quote
from coinmarket_testkit.market import MISSING, FakeMarket
from coinmarket_testkit.server import FakeCoinMarketCap

FIRST, LAST = date(2020, 2, 20), date(2020, 3, 10)  # Ether is listed from 2020-03-01
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "cmc"
CAPTURE_30_DAYS = SHARED / "api" / "7597f731a582ffb4e67751af13de407e.json"


@pytest.fixture
def server() -> Iterator[FakeCoinMarketCap]:
    with FakeCoinMarketCap(market_with_btc_and_eth()) as fake:
        yield fake


def live(server: FakeCoinMarketCap, **settings: object) -> CoinMarketCapSource:
    return CoinMarketCapSource(fast_settings(server, **settings))


def global_requests(server: FakeCoinMarketCap) -> list:
    return [r for r in server.requests if r.path.endswith(global_metrics.PATH)]


def midnight(day: date) -> str:
    return str(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()))


def test_the_row_of_a_day_is_the_quote_stamped_the_next_midnight(server: FakeCoinMarketCap):
    rows = live(server).global_metrics(FIRST, LAST)
    assert_same(rows, reference_from_market(market_with_btc_and_eth(), FIRST, LAST))
    (request,) = global_requests(server)
    assert request.query == {
        "convertId": "2781",
        "interval": "1d",
        "timeStart": midnight(FIRST + timedelta(days=1)),
        "timeEnd": midnight(LAST + timedelta(days=1)),
    }
    # Ether has no candle before 2020-03-01: the server sends a dominance of 0, stored as NULL.
    eth = rows.set_index("trade_date")["eth_dominance"]
    assert eth[: pd.Timestamp("2020-02-29")].isna().all()
    assert eth[pd.Timestamp("2020-03-01") :].notna().all()


def test_a_capped_answer_is_paged_back_without_losing_a_day(
    server: FakeCoinMarketCap, monkeypatch: pytest.MonkeyPatch
):
    server.global_max_quotes = 4
    monkeypatch.setattr(global_metrics, "PAGE_DAYS", 9)
    first, last = date(2020, 1, 1), date(2020, 7, 17)
    rows = live(server).global_metrics(first, last)
    assert_same(rows, reference_from_market(market_with_btc_and_eth(), first, last))
    days = (last - first).days + 1
    assert len(global_requests(server)) == math.ceil(days / 4)


def test_failed_answers_are_retried_to_the_same_rows(server: FakeCoinMarketCap):
    server.fail_next(2, status=503, path="global-metrics")
    server.truncate_next(1, path="global-metrics")
    source = live(server)
    rows = source.global_metrics(FIRST, LAST)
    assert_same(rows, reference_from_market(market_with_btc_and_eth(), FIRST, LAST))
    assert source.client.retries == 3


def test_a_spent_retry_budget_fails_naming_the_days(server: FakeCoinMarketCap):
    server.fail_next(20, status=500, path="global-metrics")
    with pytest.raises(
        SourceError, match=r"global metrics of 2020-02-20..2020-03-10: retry budget"
    ):
        live(server, retry_budget=2).global_metrics(FIRST, LAST)


def test_days_not_published_have_no_row_and_no_error(server: FakeCoinMarketCap):
    server.unpublished_from(LAST)  # the newest day's quote is not out yet
    server.drop_global_metrics(date(2020, 3, 1))
    rows = live(server).global_metrics(FIRST, LAST)
    expected = reference_from_market(market_with_btc_and_eth(), FIRST, LAST - timedelta(days=1))
    expected = expected[expected["trade_date"] != pd.Timestamp("2020-03-01")]
    assert_same(rows, expected.reset_index(drop=True))


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("btc_dominance", 100.5, "btc_dominance is above 100 % (100.5)"),
        ("total_market_cap", -1.0, "total_market_cap is negative (-1.0)"),
        ("altcoin_volume_24h", "abc", "altcoin_volume_24h is not a number ('abc')"),
        ("active_exchanges", 2.5, "active_exchanges is not a whole number (2.5)"),
    ],
)
def test_a_bad_value_fails_naming_day_and_field(
    server: FakeCoinMarketCap, field: str, value: object, problem: str
):
    server.corrupt_global_metrics("2020-03-03", field, value)
    with pytest.raises(SourceError) as raised:
        live(server).global_metrics(FIRST, LAST)
    assert f"2020-03-03: {problem}" in str(raised.value)


def test_a_figure_left_out_is_stored_as_unknown(server: FakeCoinMarketCap):
    server.corrupt_global_metrics("2020-03-03", "active_market_pairs", MISSING)
    rows = live(server).global_metrics(FIRST, LAST).set_index("trade_date")
    assert pd.isna(rows.loc["2020-03-03", "active_market_pairs"])
    assert rows["active_market_pairs"].notna().sum() == len(rows) - 1


def test_an_intraday_quote_is_not_a_days_end():
    def quote(stamp: str, cap: float) -> dict[str, Any]:
        return {
            "timestamp": stamp,
            "btcDominance": 50.0,
            "quote": [{"name": "2781", "totalMarketCap": cap}],
        }

    quotes = [quote("2020-01-02T00:00:00.000Z", 1.0), quote("2020-01-02T13:45:00.000Z", 2.0)]
    rows = global_metrics.global_rows(quotes, date(2020, 1, 1), date(2020, 1, 2))
    assert rows["trade_date"].tolist() == [pd.Timestamp("2020-01-01")]
    assert rows["total_market_cap"].tolist() == [1.0]


def test_a_quote_in_another_currency_fails_instead_of_being_stored_as_usd():
    quote = {
        "timestamp": "2020-01-02T00:00:00.000Z",
        "quote": [{"name": "1", "totalMarketCap": 26548681.49640928}],  # in BTC
    }
    with pytest.raises(SourceError, match=r"no figures in 2781 \(has \['1'\]\)"):
        global_metrics.global_rows([quote], date(2020, 1, 1), date(2020, 1, 1))


# -- the real captured answers (in BTC, re-serialised by R: status scalars boxed) --------------

needs_capture = pytest.mark.skipif(
    not CAPTURE_30_DAYS.is_file(), reason=f"captured answers not present at {CAPTURE_30_DAYS}"
)


def captured_quotes() -> list[dict[str, Any]]:
    return json.loads(CAPTURE_30_DAYS.read_text())["data"]["quotes"]


@needs_capture
def test_the_server_writes_a_quote_with_the_real_keys_in_their_order():
    real = captured_quotes()[0]
    figures = FakeMarket(market_with_btc_and_eth()).global_metrics_on(date(2020, 3, 5))
    fake = global_quote(date(2020, 3, 6), figures)
    assert list(fake) == list(real)
    assert list(fake["quote"][0]) == list(real["quote"][0])
    assert fake["timestamp"] == "2020-03-06T00:00:00.000Z"


@needs_capture
def test_real_quotes_parse_each_into_the_day_before_its_stamp():
    rows = global_metrics.global_rows(
        captured_quotes(), date(2019, 12, 31), date(2020, 1, 29), convert_id=1
    )
    assert rows["trade_date"].iloc[0] == pd.Timestamp("2019-12-31")  # stamped 2020-01-01
    assert len(rows) == 30
    first = rows.iloc[0]
    assert first["btc_dominance"] == 68.3033
    assert first["total_market_cap"] == 26548681.49640928  # in BTC: the capture's convertId=1
    assert first["active_cryptocurrencies"] == 3286
    assert rows["eth_dominance"].isna().all()  # published as 0 in 2020: CoinMarketCap has none


@needs_capture
@pytest.mark.skipif(not (SHARED / "daily" / "BTC.csv").is_file(), reason="no daily/BTC.csv")
def test_a_quote_stamped_d_holds_bitcoins_supply_after_the_candle_of_d_minus_1():
    """The evidence for the rule: in BTC, the total less the altcoins is Bitcoin's market cap in
    BTC, i.e. its supply; it equals the supply of the day before the stamp (market cap / close
    of its candle) and not the supply of the stamp's own day."""
    with (SHARED / "daily" / "BTC.csv").open(newline="") as file:
        supply = {
            date.fromisoformat(row["date"]): float(row["market_cap"]) / float(row["close"])
            for row in csv.DictReader(file)
        }
    for quote in captured_quotes():
        stamp = date.fromisoformat(quote["timestamp"][:10])
        inner = quote["quote"][0]
        bitcoins = inner["totalMarketCap"] - inner["altcoinMarketCap"]
        assert bitcoins == pytest.approx(supply[stamp - timedelta(days=1)], rel=1e-9)
        assert abs(bitcoins / supply[stamp] - 1) > 5e-5  # about a day of mining apart
