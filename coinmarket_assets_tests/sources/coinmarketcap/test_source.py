"""The live client against the local CoinMarketCap over real sockets: paging, faults, retries."""

import re
import time
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from coinmarket_assets.sources.base import CandleNotPublishedError, SourceError, resolve_universe
from coinmarket_assets.sources.coinmarketcap import data_api, pro_api
from coinmarket_assets.sources.coinmarketcap.client import ApiClient, ApiError
from coinmarket_assets.sources.coinmarketcap.data_api import quotes_to_candles
from coinmarket_assets.sources.coinmarketcap.source import CoinMarketCapSource
from coinmarket_assets.sources.validation import InvalidCandlesError
from coinmarket_assets_tests.sources.coinmarketcap.conftest import fast_settings
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, random_walk

FIRST, LAST = date(2020, 1, 1), date(2020, 7, 18)


def _candles(source: CoinMarketCapSource, tickers: list[str], first=FIRST, last=LAST):
    coins = resolve_universe(source.listing(), tickers)
    return source.checked_candles(coins, first, last).candles


def _expected(market: SyntheticMarket, tickers: list[str], first=FIRST, last=LAST) -> pd.DataFrame:
    candles = market.candles()
    candles = candles[candles["ticker"].isin(tickers)]
    candles = candles[candles["trade_date"].between(pd.Timestamp(first), pd.Timestamp(last))]
    return candles.sort_values(["coin_id", "trade_date"], ignore_index=True)


def _historical_calls(server: FakeCoinMarketCap) -> int:
    return sum("historical" in r.path for r in server.requests)


def test_history_pages_back_past_the_day_cap_and_equals_the_published_candles(
    live: CoinMarketCapSource, fake_cmc: FakeCoinMarketCap, market: SyntheticMarket
):
    candles = _candles(live, market.tickers)
    expected = _expected(market, market.tickers)
    pd.testing.assert_frame_equal(candles, expected, check_exact=True, check_dtype=False)
    assert _historical_calls(fake_cmc) >= 200 // 30 * 4  # several pages per coin


def test_only_the_requested_days_are_kept(live: CoinMarketCapSource, fake_cmc: FakeCoinMarketCap):
    fake_cmc.add_out_of_range_quotes()
    candles = _candles(live, ["BETA"], date(2020, 3, 1), date(2020, 3, 5))
    assert list(candles["trade_date"].dt.day) == [1, 2, 3, 4, 5]


def test_listing_resolves_symbols_slugs_ids_and_ambiguous_symbols_by_rank(
    live: CoinMarketCapSource, fake_cmc: FakeCoinMarketCap, caplog: pytest.LogCaptureFixture
):
    # A smaller id and a lower market cap: only the rank picks ALPHA's real coin.
    fake_cmc.add_coin(50, "ALPHA", "Alpha Fork", "alpha-fork", None, market_cap=1.0)
    listing = live.listing()
    assert [c.coin_id for c in resolve_universe(listing, ["ALPHA"])] == [101]
    assert "ALPHA is ambiguous: using alpha-coin, not alpha-fork (id 50)" in caplog.text
    assert [c.coin_id for c in resolve_universe(listing, ["alpha:Alpha-Fork"])] == [50]
    assert [c.coin_id for c in resolve_universe(listing, ["102"])] == [102]
    assert [c.coin_id for c in resolve_universe(listing, ["BETA", "102"])] == [102]
    top_two = resolve_universe(listing, ["ALL"], top_n=2)
    assert [c.coin_id for c in top_two] == list(listing.sort_values("rank")["coin_id"].head(2))


@pytest.mark.parametrize(
    "fetch_listing", [data_api.fetch_listing, pro_api.fetch_listing], ids=["data-api", "pro-api"]
)
def test_a_listing_whose_ranks_shift_between_pages_has_each_coin_once_at_its_first_rank(
    market: SyntheticMarket, fetch_listing
):
    with FakeCoinMarketCap(market, api_key="k") as server:
        client = ApiClient(fast_settings(server, api_key="k"))
        before = fetch_listing(client).set_index("rank")
        second, third_cap = before.loc[2, "coin_id"], before.loc[3, "market_cap"]
        # The second coin falls just below the third once the first page is read.
        server.rerank_after_next_listing_page(int(second), third_cap - 1)
        listing = fetch_listing(client, page_size=2)
        starts = [r.query["start"] for r in server.requests if "listing" in r.path][1:]
    assert listing["coin_id"].is_unique
    assert listing.set_index("coin_id").loc[second, "rank"] == 2
    assert starts == ["1", "3", "5"]


@pytest.mark.parametrize(
    "inject",
    [
        lambda s: s.fail_next(3, status=429, retry_after=0.1, path="historical"),
        lambda s: s.fail_next(2, status=503, path="historical"),
        lambda s: s.error_payload_next(2, path="historical"),
        lambda s: s.truncate_next(2, path="historical"),
        lambda s: s.malformed_next(2, path="historical"),
        lambda s: s.slow_next(1, 3.0, path="historical"),
    ],
    ids=["429-retry-after", "503", "error-code-in-200", "truncated", "malformed", "timeout"],
)
def test_transient_faults_are_retried_to_success(
    live: CoinMarketCapSource, fake_cmc: FakeCoinMarketCap, market: SyntheticMarket, inject
):
    inject(fake_cmc)
    candles = _candles(live, ["BETA"])
    pd.testing.assert_frame_equal(
        candles, _expected(market, ["BETA"]), check_exact=True, check_dtype=False
    )
    assert live.client.retries >= 1


def test_retry_after_is_honoured(fake_cmc: FakeCoinMarketCap):
    source = CoinMarketCapSource(fast_settings(fake_cmc))
    source.listing()
    fake_cmc.fail_next(1, status=429, retry_after=1.0, path="historical")
    _candles(source, ["BETA"], date(2020, 7, 1), date(2020, 7, 18))
    first, second = [r for r in fake_cmc.requests if "historical" in r.path][:2]
    assert first.status == 429
    assert second.time - first.time >= 1.0


def test_a_spent_retry_budget_fails_naming_coin_and_days(fake_cmc: FakeCoinMarketCap):
    source = CoinMarketCapSource(fast_settings(fake_cmc, retry_budget=3))
    source.listing()
    fake_cmc.fail_next(50, status=500, path="historical")
    with pytest.raises(SourceError, match=r"BETA \(id 102\), 2020-01-01..2020-07-18: retry budget"):
        _candles(source, ["BETA"])
    assert source.client.retries == 4


def test_a_refusal_is_not_retried(fake_cmc: FakeCoinMarketCap):
    source = CoinMarketCapSource(fast_settings(fake_cmc))
    source.listing()
    fake_cmc.fail_next(1, status=404, path="historical")
    with pytest.raises(SourceError, match=r"BETA .*HTTP 404"):
        _candles(source, ["BETA"])
    assert source.client.retries == 0


def test_an_html_refusal_from_the_cdn_is_not_retried(fake_cmc: FakeCoinMarketCap):
    source = CoinMarketCapSource(fast_settings(fake_cmc))
    source.client.session.headers["User-Agent"] = "python-requests/2"  # a robot's agent
    with pytest.raises(ApiError, match="HTTP 403"):
        source.listing()
    assert source.client.retries == 0


def test_retry_after_pauses_every_worker(fake_cmc: FakeCoinMarketCap, market: SyntheticMarket):
    source = CoinMarketCapSource(fast_settings(fake_cmc, max_workers=4))
    source.listing()
    fake_cmc.fail_next(1, status=429, retry_after=1.5, path="historical")
    _candles(source, market.tickers)
    historical = [r for r in fake_cmc.requests if "historical" in r.path]
    refused = next(r for r in historical if r.status == 429)
    # Requests already on the wire when the 429 arrived are answered within milliseconds.
    during_pause = [r for r in historical if refused.time + 0.1 < r.time < refused.time + 1.4]
    assert during_pause == []
    assert any(r.time >= refused.time + 1.5 for r in historical)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("close", None, "close is missing"),
        ("open", "abc", "open is not a number ('abc')"),
        ("low", -1, "low is negative (-1.0)"),
    ],
)
def test_a_bad_payload_names_coin_day_and_field(
    live: CoinMarketCapSource, fake_cmc: FakeCoinMarketCap, field: str, value: object, problem: str
):
    fake_cmc.corrupt("GAMMA", "2020-05-05", field, value)
    with pytest.raises(InvalidCandlesError, match=re.escape(f"GAMMA 2020-05-05: {problem}")):
        _candles(live, ["ALPHA", "GAMMA"])


def test_duplicate_days_in_an_answer_fail(live: CoinMarketCapSource, fake_cmc: FakeCoinMarketCap):
    fake_cmc.duplicate_day("GAMMA", "2020-05-05")
    with pytest.raises(InvalidCandlesError, match="GAMMA 2020-05-05: trade_date appears more"):
        _candles(live, ["GAMMA"])


@pytest.mark.parametrize("limit", [20.0, 7.5])
def test_the_rate_limit_holds_over_real_sockets(
    fake_cmc: FakeCoinMarketCap, market: SyntheticMarket, limit: float
):
    source = CoinMarketCapSource(fast_settings(fake_cmc, rate_limit=limit, max_workers=4))
    fake_cmc.reset_requests()
    started = time.monotonic()
    _candles(source, market.tickers)
    elapsed = time.monotonic() - started
    times = sorted(r.time for r in fake_cmc.requests)
    assert len(times) > limit  # enough requests for the limit to bind
    window = 4.0
    worst = max(sum(1 for t in times if start <= t < start + window) for start in times)
    assert worst <= limit * window
    assert elapsed >= (len(times) - limit) / limit  # the limiter made the client wait


def test_the_pro_api_serves_the_listing_and_the_data_api_the_history_without_ohlcv_plan(
    market: SyntheticMarket,
):
    with FakeCoinMarketCap(market, api_key="k", max_days=30) as server:
        source = CoinMarketCapSource(fast_settings(server, api_key="k"))
        candles = _candles(source, ["BETA"])
        paths = [r.path for r in server.requests]
    assert any("/pro/v1/cryptocurrency/map" in p for p in paths)
    assert any("/pro/v1/cryptocurrency/listings/latest" in p for p in paths)
    assert sum("/pro/v2/cryptocurrency/ohlcv" in p for p in paths) == 1  # refused once, remembered
    assert any("/data-api/v3.1/cryptocurrency/historical" in p for p in paths)
    pd.testing.assert_frame_equal(candles, _expected(market, ["BETA"]), check_dtype=False)


def test_the_pro_api_serves_the_history_when_the_plan_allows(market: SyntheticMarket):
    with FakeCoinMarketCap(market, api_key="k", pro_ohlcv_allowed=True) as server:
        source = CoinMarketCapSource(fast_settings(server, api_key="k"))
        candles = _candles(source, ["BETA"])
        paths = [r.path for r in server.requests]
    assert not any("/data-api/" in p for p in paths)
    expected = _expected(market, ["BETA"])
    pd.testing.assert_frame_equal(candles, expected, check_exact=True, check_dtype=False)


def test_a_wrong_api_key_fails_clearly(market: SyntheticMarket):
    with FakeCoinMarketCap(market, api_key="right") as server:
        source = CoinMarketCapSource(fast_settings(server, api_key="wrong"))
        with pytest.raises(ApiError, match="HTTP 401, error_code 1001"):
            source.listing()


def test_an_unpublished_newest_candle_fails_in_a_retryable_way():
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    recent = SyntheticMarket(
        [SyntheticCoin(1, "BTC", "Bitcoin", random_walk(1, yesterday - timedelta(days=9), 10, 1.0))]
    )
    with FakeCoinMarketCap(recent) as server:
        server.unpublished_from(yesterday)
        source = CoinMarketCapSource(fast_settings(server))
        with pytest.raises(CandleNotPublishedError, match=f"BTC {yesterday}"):
            _candles(source, ["BTC"], yesterday - timedelta(days=3), yesterday)
        server.unpublished_from(None)
        assert len(_candles(source, ["BTC"], yesterday - timedelta(days=3), yesterday)) == 4


def test_a_candles_day_is_the_utc_date_of_its_open_in_any_local_time_zone(
    monkeypatch: pytest.MonkeyPatch,
):
    quotes = [{"timeOpen": "2020-01-07T00:00:00.000Z", "quote": {"close": 1.0}}]
    for zone in ["Pacific/Kiritimati", "America/Adak"]:  # UTC+14 and UTC-10
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        candles = quotes_to_candles(quotes, 1, "BTC")
        assert candles["trade_date"].tolist() == [pd.Timestamp("2020-01-07")]
    monkeypatch.delenv("TZ")
    time.tzset()
