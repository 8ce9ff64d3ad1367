"""The Pro API (``/pro``): the coin map, the latest listings and the daily OHLCV history.

Requests need the key in ``X-CMC_PRO_API_KEY``; the history needs a plan that allows it. Where
the real API is undocumented: bad parameters answer HTTP 400 with the integer ``error_code``
400.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from coinmarket_testkit.market import PRICE_NAMES, Coin, FakeMarket, Summary, present
from coinmarket_testkit.wire import (
    BadParameter,
    Json,
    Response,
    at,
    close_iso,
    json_response,
    not_found,
    open_iso,
    page,
    requested_coin,
    status,
    time_param,
    unix,
    utc_day,
)

PREFIX = "/pro"
KEY_HEADER = "X-CMC_PRO_API_KEY"
MAP = "/v1/cryptocurrency/map"
LISTINGS = "/v1/cryptocurrency/listings/latest"
OHLCV = "/v2/cryptocurrency/ohlcv/historical"


@dataclass(frozen=True)
class Plan:
    """The key that the server accepts (None: none) and whether its plan includes the history."""

    api_key: str | None = None
    ohlcv_allowed: bool = False


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
    if path == OHLCV and not plan.ohlcv_allowed:
        message = "Your API Key subscription plan doesn't support this endpoint."
        return json_response(403, {"status": status("1006", message, True)})
    return None


def coin_map(market: FakeMarket, query: dict[str, str]) -> list[Json]:
    """One page of the coins by id, only those of ``symbol`` (comma-separated) when given."""
    symbols = {s for s in query.get("symbol", "").split(",") if s}
    entries = [
        map_entry(coin, rank, summary)
        for coin, rank, summary in sorted(market.ranked(), key=lambda e: e[0].coin_id)
        if not symbols or coin.ticker in symbols
    ]
    return page(entries, query)


def listings(market: FakeMarket, query: dict[str, str]) -> list[Json]:
    """One page of the coins by rank, in USD only."""
    if query.get("convert", "USD") != "USD":
        raise BadParameter("convert")
    return [listing_entry(coin, rank, s) for coin, rank, s in page(market.ranked(), query)]


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


def map_entry(coin: Coin, rank: int, s: Summary) -> Json:
    return {
        "id": coin.coin_id,
        "rank": rank,
        "name": coin.name,
        "symbol": coin.ticker,
        "slug": coin.slug,
        "is_active": 1,
        "first_historical_data": open_iso(s.first_day),
        "last_historical_data": close_iso(s.last_day),
        "platform": None,
    }


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
