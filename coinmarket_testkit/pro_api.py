"""The Pro API (``/pro``): the coin map, the latest and historical listings and the daily OHLCV
history.

Requests need the key in ``X-CMC_PRO_API_KEY``; the OHLCV history and the historical listings
each need a plan that allows them. Where the real API is undocumented: bad parameters answer
HTTP 400 with the integer ``error_code`` 400; a historical listing's page comes shuffled.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from coinmarket_testkit.market import (
    PRICE_NAMES,
    Coin,
    DayListing,
    FakeMarket,
    Summary,
    present,
)
from coinmarket_testkit.wire import (
    BadParameter,
    Json,
    Response,
    at,
    close_iso,
    day_param,
    int_param,
    json_response,
    not_found,
    open_iso,
    page,
    requested_coin,
    shuffled,
    status,
    time_param,
    unix,
    utc_day,
)
from coinmarket_testkit.wire import coin_map as wire_coin_map

PREFIX = "/pro"
KEY_HEADER = "X-CMC_PRO_API_KEY"
MAP = "/v1/cryptocurrency/map"
LISTINGS = "/v1/cryptocurrency/listings/latest"
HISTORICAL_LISTINGS = "/v1/cryptocurrency/listings/historical"
OHLCV = "/v2/cryptocurrency/ohlcv/historical"
MAX_PAGE = 5000
PLAN_REFUSED = "Your API Key subscription plan doesn't support this endpoint."


@dataclass(frozen=True)
class Plan:
    """The key that the server accepts (None: none) and whether its plan includes the OHLCV
    history and the historical listings."""

    api_key: str | None = None
    ohlcv_allowed: bool = False
    listings_allowed: bool = False


def answer(
    market: FakeMarket, path: str, query: dict[str, str], headers: dict[str, str], plan: Plan
) -> Response:
    """The answer to ``path`` (below the prefix), ``headers`` with lower-case names."""
    refusal = _refusal(path, headers, plan)
    if refusal is not None:
        return refusal
    handler = _HANDLERS.get(path)
    if handler is None:
        return not_found(pro=True)
    try:
        data = handler(market, query)
    except BadParameter as error:
        return json_response(400, {"status": status("400", str(error), True)})
    return json_response(200, {"status": status("0", None, True), "data": data})


def _refusal(path: str, headers: dict[str, str], plan: Plan) -> Response | None:
    """HTTP 401 without the right key, 403 for the history on a plan without it."""
    if plan.api_key is None or headers.get(KEY_HEADER.lower()) != plan.api_key:
        return json_response(401, {"status": status("1001", "This API Key is invalid.", True)})
    refused = (path == OHLCV and not plan.ohlcv_allowed) or (
        path == HISTORICAL_LISTINGS and not plan.listings_allowed
    )
    if refused:
        return json_response(403, {"status": status("1006", PLAN_REFUSED, True)})
    return None


def coin_map(market: FakeMarket, query: dict[str, str]) -> list[Json]:
    """One page of the coins by id, of ``listing_status`` (default active), only those of
    ``symbol`` (comma-separated) when given."""
    return wire_coin_map(market, query, default_limit=100)


def listings(market: FakeMarket, query: dict[str, str]) -> list[Json]:
    """One page of the coins by rank, in USD only."""
    if query.get("convert", "USD") != "USD":
        raise BadParameter("convert")
    return [listing_entry(coin, rank, s) for coin, rank, s in page(market.ranked(), query)]


def historical_listings(market: FakeMarket, query: dict[str, str]) -> list[Json]:
    """One page of the ``date``'s listing by rank, in USD only, shuffled."""
    day = day_param(query, "date")
    if query.get("convert", "USD") != "USD":
        raise BadParameter("convert")
    if int_param(query, "limit", 100) > MAX_PAGE:
        raise BadParameter("limit")
    entries = [historical_entry(row, day) for row in page(market.listing_on(day), query)]
    return shuffled(entries, f"pro:{day}:{query.get('start', '1')}")


def ohlcv(market: FakeMarket, query: dict[str, str]) -> Json:
    """The daily candles after ``time_start`` up to ``time_end``, all in one answer."""
    coin = requested_coin(market, query)
    start = time_param(query, "time_start")
    end = time_param(query, "time_end") or int(time.time())
    published = market.published_days(coin)
    days = [d for d in published if (start is None or unix(d) > start) and unix(d) <= end]
    days = market.served_days(coin, published, days, utc_day(end))
    quotes = [quote(day, coin.candles[day]) for day in days]
    return {"id": coin.coin_id, "name": coin.name, "symbol": coin.ticker, "quotes": quotes}


_HANDLERS: dict[str, Callable[[FakeMarket, dict[str, str]], Any]] = {
    MAP: coin_map,
    LISTINGS: listings,
    HISTORICAL_LISTINGS: historical_listings,
    OHLCV: ohlcv,
}


def quote(day: date, candle: dict[str, Any]) -> Json:
    """One daily candle of an OHLCV answer."""
    usd = present(candle, {**PRICE_NAMES, "volume": "volume", "market_cap": "market_cap"})
    usd["timestamp"] = close_iso(day)
    return {
        "time_open": open_iso(day),
        "time_close": close_iso(day),
        "time_high": at(day, 15),
        "time_low": at(day, 6),
        "quote": {"USD": usd},
    }


def historical_entry(row: DayListing, day: date) -> Json:
    """A coin's row of a day's listing; fields edited to ``MISSING`` are left out."""
    values, updated = row.values, close_iso(day)
    supplies = ("circulating_supply", "total_supply", "max_supply")
    usd = {"price": "price", "volume_24h": "volume_24h", "market_cap": "market_cap"}
    entry: Json = {
        "id": row.coin.coin_id,
        "name": row.coin.name,
        "symbol": row.coin.ticker,
        "slug": row.coin.slug,
        "cmc_rank": values.get("rank"),
        "num_market_pairs": row.coin.market_pairs,
        **{name: values[name] for name in supplies if name in values},
        "last_updated": updated,
        "date_added": open_iso(row.first_day),
        "tags": list(row.coin.tags_on(day)),
        "platform": None,
        "quote": {
            "USD": {
                **{api: values[f] for f, api in usd.items() if f in values},
                "percent_change_24h": values["change_24h"],
                "percent_change_7d": values["change_7d"],
                "last_updated": updated,
            }
        },
    }
    if "rank" not in values:
        del entry["cmc_rank"]
    return entry


def listing_entry(coin: Coin, rank: int, s: Summary) -> Json:
    updated = close_iso(s.last_day)
    return {
        "id": coin.coin_id,
        "name": coin.name,
        "symbol": coin.ticker,
        "slug": coin.slug,
        "cmc_rank": rank,
        "num_market_pairs": coin.market_pairs,
        "circulating_supply": s.supply,
        "total_supply": s.supply,
        "max_supply": s.max_supply(coin),
        "last_updated": updated,
        "date_added": open_iso(s.first_day),
        "tags": list(coin.tags_on()),
        "quote": {
            "USD": {
                "price": s.price,
                "volume_24h": s.volume,
                "market_cap": s.market_cap,
                "percent_change_24h": s.change_24h,
                "last_updated": updated,
            }
        },
    }
