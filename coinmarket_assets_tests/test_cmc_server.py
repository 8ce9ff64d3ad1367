"""The local CoinMarketCap server itself, driven with plain ``requests`` over loopback."""

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from coinmarket_testkit.market import MISSING
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import (
    SyntheticCoin,
    SyntheticMarket,
    default_market,
    random_walk,
)

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0"
API_CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmc" / "api"
DAILY_CAPTURE = API_CAPTURES / "fcce7d762bbee082f65c377f184cd541.json"
LISTING = "/v3/cryptocurrency/listing"
HISTORICAL = "/v3.1/cryptocurrency/historical"
PRO_KEY = "test-key"
BETA = 102  # default_market's coin without gaps


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # never route loopback through a configured proxy
        http.headers["User-Agent"] = BROWSER
        yield http


@pytest.fixture
def cmc() -> Iterator[FakeCoinMarketCap]:
    with FakeCoinMarketCap(default_market(), api_key=PRO_KEY) as server:
        yield server


def unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def listing(
    http: requests.Session, cmc: FakeCoinMarketCap, start: int = 1, limit: int = 100
) -> dict[str, Any]:
    params = {"start": start, "limit": limit, "sortBy": "market_cap", "sortType": "desc"}
    params |= {"convert": "USD", "cryptoType": "all", "tagType": "all", "audited": "false"}
    answer = http.get(cmc.data_api_url + LISTING, params=params, timeout=5)
    answer.raise_for_status()
    return answer.json()


def historical(
    http: requests.Session, cmc: FakeCoinMarketCap, coin_id: int, time_end: int, time_start: int = 0
) -> requests.Response:
    params = {"id": coin_id, "convertId": 2781, "timeStart": time_start, "timeEnd": time_end}
    return http.get(
        cmc.data_api_url + HISTORICAL, params={**params, "interval": "daily"}, timeout=5
    )


def quote_days(payload: dict[str, Any]) -> list[date]:
    return [date.fromisoformat(q["timeOpen"][:10]) for q in payload["data"]["quotes"]]


def pro_get(
    http: requests.Session, cmc: FakeCoinMarketCap, path: str, key: str = PRO_KEY, **params: Any
) -> requests.Response:
    return http.get(cmc.pro_api_url + path, params=params, headers={"X-CMC_PRO_API_KEY": key})


def key_tree(value: Any) -> Any:
    """The nested key names of a JSON value; a list stands for its first element."""
    if isinstance(value, dict):
        return {key: key_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [key_tree(value[0])] if value else []
    return None


def test_listing_pages_coins_by_newest_market_cap_descending(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    market = default_market()
    first, rest = listing(session, cmc, 1, 2), listing(session, cmc, 3, 10)
    entries = first["data"]["cryptoCurrencyList"] + rest["data"]["cryptoCurrencyList"]

    assert first["status"]["error_code"] == "0"
    assert first["data"]["totalCount"] == "5"
    assert len(first["data"]["cryptoCurrencyList"]) == 2
    assert [e["cmcRank"] for e in entries] == [1, 2, 3, 4, 5]
    caps = [e["quotes"][0]["marketCap"] for e in entries]
    assert caps == sorted(caps, reverse=True)
    assert {e["symbol"] for e in entries} == set(market.tickers)
    beta = next(e for e in entries if e["id"] == BETA)
    newest = market.coin("BETA").candles.iloc[-1]
    assert beta["quotes"][0]["name"] == "USD"
    assert beta["quotes"][0]["price"] == newest["close"]
    assert beta["quotes"][0]["volume24h"] == newest["volume"]
    assert beta["dateAdded"] == "2020-01-01T00:00:00.000Z"


def test_listing_leaves_out_null_max_supply(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    entries = listing(session, cmc)["data"]["cryptoCurrencyList"]

    assert {e["id"] for e in entries if "maxSupply" not in e} == {102, 104}
    assert all(e["maxSupply"] is not None for e in entries if "maxSupply" in e)


def test_historical_caps_days_and_pages_backwards_with_time_end_cursor(
    session: requests.Session,
) -> None:
    coin = SyntheticCoin(7, "PAGE", "Paged", random_walk(7, date(2020, 1, 1), 100, 5.0))
    with FakeCoinMarketCap(SyntheticMarket([coin]), max_days=40) as cmc:
        cursor, pages = unix(date(2020, 4, 9)) + 3600, []  # within the newest day
        while True:
            payload = historical(session, cmc, 7, cursor, time_start=cursor - 86400).json()
            if not payload["data"]["quotes"]:
                break
            pages.append(quote_days(payload))
            cursor = int(payload["data"]["timeEnd"])
            assert cursor == unix(pages[-1][0]) - 1

    assert [len(page) for page in pages] == [40, 40, 20]
    assert all(page == sorted(page) for page in pages)
    days = sorted(day for page in pages for day in page)
    assert days == [date.fromordinal(date(2020, 1, 1).toordinal() + i) for i in range(100)]


def test_historical_honours_time_start_only_when_asked(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    time_end = unix(date(2020, 1, 10))
    ignored = quote_days(historical(session, cmc, BETA, time_end, unix(date(2020, 1, 8))).json())
    cmc.honour_time_start = True
    honoured = quote_days(historical(session, cmc, BETA, time_end, unix(date(2020, 1, 8))).json())

    assert ignored[0] == date(2020, 1, 1)
    assert honoured == [date(2020, 1, 8), date(2020, 1, 9), date(2020, 1, 10)]


def test_unknown_coin_id_is_an_error_payload_inside_http_200(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    answer = historical(session, cmc, 999, unix(date(2020, 1, 10)))

    assert answer.status_code == 200
    assert answer.json()["status"]["error_code"] == "400"
    assert answer.json()["status"]["error_message"] == 'Invalid value for "id"'


def test_fail_next_answers_429_with_retry_after_then_recovers(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    cmc.fail_next(1, status=429, retry_after=2, path="historical")

    listed = session.get(cmc.data_api_url + LISTING, timeout=5)
    limited = historical(session, cmc, BETA, unix(date(2020, 1, 10)))
    recovered = historical(session, cmc, BETA, unix(date(2020, 1, 10)))

    assert listed.status_code == 200
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert recovered.status_code == 200
    assert [r.status for r in cmc.requests] == [200, 429, 200]


def test_fail_next_sends_a_textual_retry_after_as_it_is(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    cmc.fail_next(1, status=503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")

    answer = historical(session, cmc, BETA, unix(date(2020, 1, 10)))

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"


def test_rerank_after_next_listing_page_repeats_a_falling_coin_on_the_next_page(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    first = listing(session, cmc, 1, 2)["data"]["cryptoCurrencyList"]
    second_id = first[1]["id"]
    third = listing(session, cmc, 3, 1)["data"]["cryptoCurrencyList"][0]
    cmc.rerank_after_next_listing_page(second_id, third["quotes"][0]["marketCap"] - 1)

    again = listing(session, cmc, 1, 2)["data"]["cryptoCurrencyList"]
    shifted = listing(session, cmc, 3, 2)["data"]["cryptoCurrencyList"]

    assert [e["id"] for e in again] == [e["id"] for e in first]  # ranked as before the shift
    assert shifted[0]["id"] == second_id
    assert (again[1]["cmcRank"], shifted[0]["cmcRank"]) == (2, 3)


def test_error_payload_next_keeps_http_200(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    cmc.error_payload_next(1)
    busy = historical(session, cmc, BETA, unix(date(2020, 1, 10)))

    assert busy.status_code == 200
    assert busy.json()["status"]["error_code"] == "500"
    assert busy.json()["status"]["error_message"] == "The system is busy"
    assert historical(session, cmc, BETA, unix(date(2020, 1, 10))).json()["data"]["quotes"]


def test_truncated_body_raises_in_the_client(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    cmc.truncate_next(1)

    with pytest.raises((requests.exceptions.RequestException, json.JSONDecodeError)):
        historical(session, cmc, BETA, unix(date(2020, 1, 10))).json()
    assert historical(session, cmc, BETA, unix(date(2020, 1, 10))).ok


def test_malformed_body_is_html_not_json(session: requests.Session, cmc: FakeCoinMarketCap) -> None:
    cmc.malformed_next(1)
    answer = historical(session, cmc, BETA, unix(date(2020, 1, 10)))

    assert answer.status_code == 200
    with pytest.raises(requests.exceptions.JSONDecodeError):
        answer.json()


def test_slow_next_delays_the_answer(session: requests.Session, cmc: FakeCoinMarketCap) -> None:
    cmc.slow_next(1, 0.3)
    started = time.monotonic()
    historical(session, cmc, BETA, unix(date(2020, 1, 10)))
    slow = time.monotonic() - started
    started = time.monotonic()
    historical(session, cmc, BETA, unix(date(2020, 1, 10)))

    assert slow >= 0.3
    assert time.monotonic() - started < 0.3


def test_request_without_browser_user_agent_gets_cloudflare_403(cmc: FakeCoinMarketCap) -> None:
    answer = requests.get(cmc.data_api_url + LISTING, timeout=5)  # python-requests/x.y

    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("text/html")
    assert cmc.requests[0].user_agent.startswith("python-requests/")


def test_data_faults_shape_historical_answers(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    cmc.drop_day("BETA", "2020-01-03")
    cmc.duplicate_day("BETA", date(2020, 1, 5))
    cmc.revise("BETA", "2020-01-06", close=123.0)
    cmc.corrupt("BETA", "2020-01-07", "open", "abc")
    cmc.corrupt("BETA", "2020-01-08", "volume", MISSING)
    cmc.add_out_of_range_quotes()
    payload = historical(session, cmc, BETA, unix(date(2020, 1, 8))).json()
    quotes = {q["timeOpen"][:10]: q["quote"] for q in payload["data"]["quotes"]}

    assert quote_days(payload)[1:9] == [date(2020, 1, d) for d in (2, 4, 5, 5, 6, 7, 8, 9)]
    assert quote_days(payload)[-1] == date(2020, 1, 10)
    assert quotes["2020-01-06"]["close"] == 123.0
    assert quotes["2020-01-07"]["open"] == "abc"
    assert "volume" not in quotes["2020-01-08"]


def test_unpublished_days_are_withheld(session: requests.Session, cmc: FakeCoinMarketCap) -> None:
    cmc.unpublished_from("2020-07-18")
    days = quote_days(historical(session, cmc, BETA, unix(date(2020, 7, 18))).json())

    assert days[-1] == date(2020, 7, 17)


def test_added_coin_duplicates_a_symbol_in_the_listing(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    cmc.add_coin(999, "BETA", "Beta Classic", "beta-classic", None, market_cap=1.0)
    entries = listing(session, cmc)["data"]["cryptoCurrencyList"]

    assert [(e["id"], e["cmcRank"]) for e in entries if e["symbol"] == "BETA"] == [
        (102, 2),
        (999, 6),
    ]


def test_pro_api_rejects_a_wrong_key_with_1001(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    answer = pro_get(session, cmc, "/v1/cryptocurrency/map", key="wrong")

    assert answer.status_code == 401
    assert answer.json()["status"]["error_code"] == 1001
    assert answer.json()["status"]["error_message"] == "This API Key is invalid."


def test_pro_api_serves_map_and_listings_with_the_key(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    coins = pro_get(session, cmc, "/v1/cryptocurrency/map").json()
    latest = pro_get(session, cmc, "/v1/cryptocurrency/listings/latest", start=1, limit=2).json()

    assert coins["status"]["error_code"] == 0
    assert [c["id"] for c in coins["data"]] == [101, 102, 103, 104, 105]
    assert [c["cmc_rank"] for c in latest["data"]] == [1, 2]
    assert set(latest["data"][0]["quote"]["USD"]) >= {"price", "volume_24h", "market_cap"}


def test_pro_ohlcv_needs_a_plan_that_allows_it(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    answer = pro_get(session, cmc, "/v2/cryptocurrency/ohlcv/historical", id=BETA)

    assert answer.status_code == 403
    assert answer.json()["status"]["error_code"] == 1006


def test_pro_ohlcv_time_start_is_exclusive(session: requests.Session) -> None:
    cmc = FakeCoinMarketCap(default_market(), api_key=PRO_KEY, pro_ohlcv_allowed=True)
    with cmc:
        params = {"id": BETA, "time_start": "2020-01-01", "time_end": unix(date(2020, 1, 3))}
        answer = pro_get(session, cmc, "/v2/cryptocurrency/ohlcv/historical", **params)
    quotes = answer.json()["data"]["quotes"]

    assert [q["time_open"][:10] for q in quotes] == ["2020-01-02", "2020-01-03"]
    assert set(quotes[0]["quote"]["USD"]) >= {"open", "close", "volume", "market_cap"}


def test_stop_closes_keep_alive_connections_and_threads(session: requests.Session) -> None:
    threads_before = set(threading.enumerate())
    cmc = FakeCoinMarketCap(default_market())
    with cmc:
        url = cmc.data_api_url + LISTING
        assert session.get(url, timeout=5).ok  # leaves an idle keep-alive connection

    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, headers={"User-Agent": BROWSER}, timeout=5)


@pytest.mark.skipif(
    not DAILY_CAPTURE.exists(), reason=f"real data-api capture not available at {DAILY_CAPTURE}"
)
def test_historical_answer_has_the_key_structure_of_the_real_capture(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    real = json.loads(DAILY_CAPTURE.read_text())
    fake = historical(session, cmc, BETA, unix(date(2020, 1, 7)), unix(date(2020, 1, 1))).json()

    assert key_tree(fake) == key_tree(real)
    assert list(fake) == list(real)


# -- historical listings and the coin map -------------------------------------------------------

HISTORICAL_LISTINGS = "/v3/cryptocurrency/listings/historical"
PRO_HISTORICAL_LISTINGS = "/v1/cryptocurrency/listings/historical"
LISTINGS_CAPTURE = API_CAPTURES / "listings_historical_2024-01-01_07_top2.csv"
DEAD = 106  # dies after DEAD_LAST_DAY, while the others go on to 2020-07-18
DEAD_LAST_DAY = date(2020, 4, 29)


def dying_market() -> SyntheticMarket:
    market = default_market()
    days = (DEAD_LAST_DAY - date(2020, 1, 1)).days + 1
    candles = random_walk(6, date(2020, 1, 1), days, 40.0)
    market.coins.append(SyntheticCoin(DEAD, "DEAD", "Dead Coin", candles))
    return market


@pytest.fixture
def dying() -> Iterator[FakeCoinMarketCap]:
    with FakeCoinMarketCap(dying_market(), api_key=PRO_KEY) as server:
        yield server


def historical_listing(
    http: requests.Session, cmc: FakeCoinMarketCap, day: str, start: int = 1, limit: int = 100
) -> dict[str, Any]:
    params = {"date": day, "start": start, "limit": limit, "convertId": 2781}
    answer = http.get(cmc.data_api_url + HISTORICAL_LISTINGS, params=params, timeout=5)
    answer.raise_for_status()
    return answer.json()


def test_historical_listing_pages_a_days_ranking_by_market_cap_in_shuffled_order(
    session: requests.Session, dying: FakeCoinMarketCap
) -> None:
    day = pd.Timestamp("2020-04-20")
    caps = {}
    for coin in dying_market().coins:
        that_day = coin.candles[coin.candles["date"] == day]
        if len(that_day):
            caps[coin.coin_id] = float(that_day["market_cap"].iloc[0])
    by_cap = sorted(caps, key=lambda coin_id: -caps[coin_id])
    first, second = (historical_listing(session, dying, "2020-04-20", s, 3)["data"] for s in (1, 4))
    entries = first + second
    ranked = sorted(entries, key=lambda e: e["cmcRank"])

    assert len(by_cap) == 6
    assert ranked != entries  # not in the order asked for
    assert [e["id"] for e in ranked] == by_cap
    assert [e["cmcRank"] for e in ranked] == [1, 2, 3, 4, 5, 6]
    assert {e["id"] for e in first} == set(by_cap[:3])
    assert {e["id"]: e["quotes"][0]["marketCap"] for e in entries} == caps


def test_a_dead_coin_leaves_the_historical_listing_after_its_last_candle(
    session: requests.Session, dying: FakeCoinMarketCap
) -> None:
    on_last = historical_listing(session, dying, DEAD_LAST_DAY.isoformat())["data"]
    after = historical_listing(session, dying, "2020-04-30")["data"]
    before_any = historical_listing(session, dying, "2019-12-31")

    assert DEAD in {e["id"] for e in on_last}
    assert DEAD not in {e["id"] for e in after}
    assert before_any["data"] == []
    assert before_any["status"]["error_code"] == "0"


def test_historical_listing_without_a_valid_date_is_an_error_payload(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    url = cmc.data_api_url + HISTORICAL_LISTINGS
    answer = session.get(url, params={"date": "yesterday"}, timeout=5)

    assert answer.status_code == 200
    assert answer.json()["status"]["error_code"] == "400"
    assert answer.json()["status"]["error_message"] == 'Invalid value for "date"'


def test_a_listing_fault_applies_to_historical_listing_pages(
    session: requests.Session, dying: FakeCoinMarketCap
) -> None:
    dying.fail_next(1, status=503, path="listings/historical")
    url = dying.data_api_url + HISTORICAL_LISTINGS
    failed = session.get(url, params={"date": "2020-04-20"}, timeout=5)

    assert failed.status_code == 503
    assert historical_listing(session, dying, "2020-04-20")["data"]


@pytest.mark.parametrize("api", ["data-api", "pro"])
def test_the_coin_map_lists_dead_coins_only_when_asked(
    session: requests.Session, dying: FakeCoinMarketCap, api: str
) -> None:
    def coin_map(**params: Any) -> list[dict[str, Any]]:
        if api == "pro":
            return pro_get(session, dying, "/v1/cryptocurrency/map", **params).json()["data"]
        url = dying.data_api_url + "/v1/cryptocurrency/map"
        return session.get(url, params=params, timeout=5).json()["data"]

    active = coin_map()
    everything = coin_map(listing_status="active,inactive,untracked")
    (dead,) = coin_map(listing_status="inactive")

    assert [e["id"] for e in active] == [101, 102, 103, 104, 105]
    assert [e["id"] for e in everything] == [101, 102, 103, 104, 105, DEAD]
    assert (dead["id"], dead["is_active"], dead["rank"]) == (DEAD, 0, None)
    assert dead["first_historical_data"] == "2020-01-01T00:00:00.000Z"
    assert dead["last_historical_data"] == "2020-04-29T23:59:59.999Z"
    assert {e["is_active"] for e in active} == {1}
    assert active[4]["first_historical_data"] == "2020-04-10T00:00:00.000Z"  # LATE


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "allowed"])
def test_pro_historical_listings_need_a_plan_that_allows_them(
    session: requests.Session, allowed: bool
) -> None:
    with FakeCoinMarketCap(default_market(), api_key=PRO_KEY, pro_listings_allowed=allowed) as cmc:
        answer = pro_get(session, cmc, PRO_HISTORICAL_LISTINGS, date="2020-04-20", limit=2)

    if not allowed:
        assert answer.status_code == 403
        assert answer.json()["status"]["error_code"] == 1006
        return
    entries = answer.json()["data"]
    assert sorted(e["cmc_rank"] for e in entries) == [1, 2]
    assert set(entries[0]["quote"]["USD"]) >= {"price", "volume_24h", "market_cap"}


def snake(name: str) -> str:
    """camelCase as R's janitor::clean_names writes it (``cmcRank`` -> ``cmc_rank``)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@pytest.mark.skipif(
    not LISTINGS_CAPTURE.exists(),
    reason=f"real listing capture not available at {LISTINGS_CAPTURE}",
)
def test_historical_listing_entries_carry_the_fields_of_the_real_capture(
    session: requests.Session, cmc: FakeCoinMarketCap
) -> None:
    real_columns = set(pd.read_csv(LISTINGS_CAPTURE, nrows=1).columns) - {"date"}
    entries = historical_listing(session, cmc, "2020-04-20")["data"]
    alpha = next(e for e in entries if e["id"] == 101)  # odd id: it has a max supply
    fields = {snake(k) for k in alpha if k != "quotes"} | {snake(k) for k in alpha["quotes"][0]}

    assert real_columns <= fields
