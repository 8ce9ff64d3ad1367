"""The keyless data-api (``/data-api``): the paged listing, the historical listings, the coin
map and the daily history, in its shapes.

Where the real API is undocumented: parameter errors (unknown or invalid ``id``, bad
``timeEnd``, ...) answer HTTP 200 with ``status.error_code`` "400", ``error_message``
'Invalid value for "id"' and ``data: {}``; an answer without candles keeps ``data.timeEnd`` at
the requested timeEnd; a historical listing's page comes shuffled, its quote is named "USD",
a day without coins is an empty list, and the coin map is one unpaged answer unless ``limit``
is given.
"""

import math
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from coinmarket_testkit.market import (
    PRICE_NAMES,
    Coin,
    DayListing,
    FakeMarket,
    Summary,
    number,
    present,
    supply,
)
from coinmarket_testkit.wire import (
    BadParameter,
    Json,
    Response,
    at,
    close_iso,
    coin_map,
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

PREFIX = "/data-api"
LISTING = "/v3/cryptocurrency/listing"
HISTORICAL_LISTINGS = "/v3/cryptocurrency/listings/historical"
MAP = "/v1/cryptocurrency/map"
HISTORICAL = "/v3.1/cryptocurrency/historical"
GLOBAL_METRICS = "/v3/global-metrics/quotes/historical"
USD_CONVERT_ID = "2781"
MAX_LISTING_PAGE = 5000
# The data-api's supply and quote names of the historical listing's fields.
SUPPLY_NAMES = {
    "circulating_supply": "circulatingSupply",
    "total_supply": "totalSupply",
    "max_supply": "maxSupply",
}
QUOTE_NAMES = {"price": "price", "volume_24h": "volume24h", "market_cap": "marketCap"}


@dataclass(frozen=True)
class HistoryLimits:
    """``max_days`` caps the candles of one historical answer (the real API: 400);
    ``honour_time_start`` (False, like the real API) drops candles before ``timeStart``."""

    max_days: int = 400
    honour_time_start: bool = False
    global_max_quotes: int = 2200


def answer(market: FakeMarket, path: str, query: dict[str, str], limits: HistoryLimits) -> Response:
    """The answer to ``path`` (below the prefix); bad parameters are errors inside HTTP 200."""
    handlers = {
        LISTING: lambda: listing(market, query),
        HISTORICAL_LISTINGS: lambda: historical_listing(market, query),
        MAP: lambda: coin_map(market, query, default_limit=1_000_000),
        HISTORICAL: lambda: historical(market, query, limits),
        GLOBAL_METRICS: lambda: global_metrics(market, query, limits.global_max_quotes),
    }
    if path not in handlers:
        return not_found(pro=False)
    try:
        data = handlers[path]()
    except BadParameter as error:
        return json_response(200, {"data": {}, "status": status("400", str(error))})
    return json_response(200, {"data": data, "status": status()})


def listing(market: FakeMarket, query: dict[str, str]) -> Json:
    """One page of the coins by rank, with the total count."""
    ranked = market.ranked()
    entries = [listing_entry(coin, rank, summary) for coin, rank, summary in page(ranked, query)]
    return {"cryptoCurrencyList": entries, "totalCount": str(len(ranked))}


def historical_listing(market: FakeMarket, query: dict[str, str]) -> list[Json]:
    """One page of the day's listing by rank, shuffled."""
    day = day_param(query, "date")
    if int_param(query, "limit", 100) > MAX_LISTING_PAGE:
        raise BadParameter("limit")
    rows = page(market.listing_on(day), query)
    entries = [historical_listing_entry(row, day) for row in rows]
    return shuffled(entries, f"{day}:{query.get('start', '1')}")


def historical_listing_entry(row: DayListing, day: date) -> Json:
    """A coin's row of a day's listing; null supplies are left out."""
    values, updated = row.values, close_iso(day)
    entry: Json = {
        "id": row.coin.coin_id,
        "name": row.coin.name,
        "symbol": row.coin.ticker,
        "slug": row.coin.slug,
        "cmcRank": values.get("rank"),
        "numMarketPairs": row.coin.market_pairs,
        **{api: values[f] for f, api in SUPPLY_NAMES.items() if values.get(f) is not None},
        "lastUpdated": updated,
        "dateAdded": open_iso(row.first_day),
        "tags": list(row.coin.tags_on(day)),
        "isActive": 1,
        "quotes": [
            {
                "name": "USD",
                **{api: values[f] for f, api in QUOTE_NAMES.items() if f in values},
                "percentChange1h": 0.0,
                "percentChange24h": values["change_24h"],
                "percentChange7d": values["change_7d"],
                "lastUpdated": updated,
            }
        ],
    }
    if "rank" not in values:
        del entry["cmcRank"]
    return entry


def historical(market: FakeMarket, query: dict[str, str], limits: HistoryLimits) -> Json:
    """The newest daily candles up to ``timeEnd``, and the cursor for the page before them."""
    coin = requested_coin(market, query)
    if query.get("interval", "daily") not in ("daily", "1d"):
        raise BadParameter("interval")
    time_end = int_param(query, "timeEnd", int(time.time()))
    first = _time_start_day(query) if limits.honour_time_start else None
    days = _served_days(market, coin, utc_day(time_end), first, limits.max_days)
    convert_id = query.get("convertId", USD_CONVERT_ID)
    cursor = unix(days[0]) - 1 if days else time_end
    return {
        "id": coin.coin_id,
        "name": coin.name,
        "symbol": coin.ticker,
        "timeEnd": str(cursor),
        "quotes": [quote(day, coin.candles[day], convert_id) for day in days],
    }


def _time_start_day(query: dict[str, str]) -> date | None:
    if "timeStart" not in query:
        return None
    return utc_day(int_param(query, "timeStart", 0))


def _served_days(
    market: FakeMarket, coin: Coin, last: date, first: date | None, max_days: int
) -> list[date]:
    """The newest ``max_days`` published days up to ``last``, plus injected faults."""
    published = market.published_days(coin)
    days = [d for d in published if d <= last and (first is None or d >= first)]
    return market.served_days(coin, published, days[-max_days:], last)


# The global metrics quote's figures outside and inside its ``quote`` (USD) entry.
GLOBAL_MARKET_NAMES = {
    "btc_dominance": "btcDominance",
    "eth_dominance": "ethDominance",
    "active_cryptocurrencies": "activeCryptocurrencies",
    "active_exchanges": "activeExchanges",
    "active_market_pairs": "activeMarketPairs",
}
GLOBAL_QUOTE_NAMES = {
    "total_market_cap": "totalMarketCap",
    "total_volume_24h": "totalVolume24H",
    "altcoin_market_cap": "altcoinMarketCap",
    "altcoin_volume_24h": "altcoinVolume24H",
}


def global_metrics(market: FakeMarket, query: dict[str, str], max_quotes: int) -> Json:
    """The daily quotes stamped within timeStart..timeEnd (both included), oldest first, at most
    the newest ``max_quotes``; the quote stamped D + 1 00:00 holds the market at the end of D."""
    if query.get("interval", "1d") not in ("1d", "daily"):
        raise BadParameter("interval")
    if query.get("convertId", USD_CONVERT_ID) != USD_CONVERT_ID:
        raise BadParameter("convertId")  # the fake quotes in USD only
    time_start = time_param(query, "timeStart")
    time_end = time_param(query, "timeEnd") or int(time.time())
    stamps = [day + timedelta(days=1) for day in market.global_days()]
    stamps = [s for s in stamps if (time_start is None or unix(s) >= time_start)]
    stamps = [s for s in stamps if unix(s) <= time_end][-max_quotes:]
    return {"quotes": [global_quote(s, market.global_metrics_on(s - timedelta(1))) for s in stamps]}


def global_quote(stamp: date, figures: dict[str, Any]) -> Json:
    """One quote in the real API's order of keys, plain scalars; a figure it has none of is 0,
    a ``MISSING`` one absent. Reported volumes repeat the adjusted ones."""
    moment, score = open_iso(stamp), unix(stamp)
    names = GLOBAL_MARKET_NAMES | GLOBAL_QUOTE_NAMES
    values = {names[name]: _wire(name, value) for name, value in figures.items()}
    for volume in ("totalVolume24H", "altcoinVolume24H"):
        if volume in values:
            values[f"{volume}Reported"] = values[volume]
    inner = [
        "totalMarketCap",
        "totalVolume24H",
        "totalVolume24HReported",
        "altcoinVolume24H",
        "altcoinVolume24HReported",
        "altcoinMarketCap",
    ]
    return {
        "timestamp": moment,
        "searchInterval": "1440",
        **{api: values[api] for api in GLOBAL_MARKET_NAMES.values() if api in values},
        "quote": [
            {
                "name": USD_CONVERT_ID,
                "timestamp": moment,
                **{api: values[api] for api in inner if api in values},
                "originalScore": str(score + 120),
            }
        ],
        "score": score * 1000,
    }


def _wire(name: str, value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return 0  # as CoinMarketCap sends a dominance it has none of
    if name.startswith("active_") and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def listing_entry(coin: Coin, rank: int, s: Summary) -> Json:
    updated = close_iso(s.last_day)
    entry: Json = {
        "id": coin.coin_id,
        "name": coin.name,
        "symbol": coin.ticker,
        "slug": coin.slug,
        "cmcRank": rank,
        "marketPairCount": coin.market_pairs,
        "circulatingSupply": s.supply,
        "selfReportedCirculatingSupply": 0,
        "totalSupply": s.supply,
        "maxSupply": s.max_supply(coin),
        "ath": s.ath,
        "atl": s.atl,
        "high24h": s.high,
        "low24h": s.low,
        "isActive": 1,
        "lastUpdated": updated,
        "dateAdded": open_iso(s.first_day),
        "tags": list(coin.tags_on()),
        "quotes": [listing_quote(s, updated)],
    }
    if entry["maxSupply"] is None:
        del entry["maxSupply"]  # the data-api leaves null supplies out
    return entry


def listing_quote(s: Summary, updated: str) -> Json:
    return {
        "name": "USD",
        "price": s.price,
        "volume24h": s.volume,
        "marketCap": s.market_cap,
        "percentChange1h": 0.0,
        "percentChange24h": s.change_24h,
        "percentChange7d": s.change_7d,
        "lastUpdated": updated,
        "fullyDilluttedMarketCap": s.market_cap,
        "dominance": 0.0,
        "turnover": s.volume / s.market_cap if s.market_cap else 0.0,
    }


def quote(day: date, candle: dict[str, Any], convert_id: str) -> Json:
    """One daily candle of a historical answer."""
    values = {"name": convert_id, **present(candle, PRICE_NAMES)}
    values |= present(candle, {"volume": "volume", "market_cap": "marketCap"})
    close, market_cap = candle.get("close"), candle.get("market_cap")
    values["circulatingSupply"] = supply(number(close), number(market_cap))
    values["timestamp"] = close_iso(day)
    return {
        "timeOpen": open_iso(day),
        "timeClose": close_iso(day),
        "timeHigh": at(day, 15),
        "timeLow": at(day, 6),
        "quote": values,
    }
