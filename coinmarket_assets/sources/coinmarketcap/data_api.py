"""The keyless data-api behind coinmarketcap.com: the coin listing, the historical listings, the
coin map and daily OHLCV history."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import pandas as pd

from coinmarket_assets.sources.base import CANDLE_FIELDS
from coinmarket_assets.sources.coinmarketcap.client import ApiClient
from coinmarket_assets.sources.coinmarketcap.listings import wire_tags
from coinmarket_assets.sources.validation import InvalidCandlesError

LISTING_PAGE = 5000
USD_ID = 2781  # CoinMarketCap's id of the US dollar, for convertId
QUOTE_FIELDS = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "market_cap": "marketCap",
}


def fetch_listing(client: ApiClient, page_size: int = LISTING_PAGE) -> pd.DataFrame:
    """Every listed coin once: LISTING_COLUMNS plus market_cap, last_update and date_added."""
    url = f"{client.settings.data_api_url}/v3/cryptocurrency/listing"
    entries: list[dict[str, Any]] = []
    while True:
        params = {
            "start": len(entries) + 1,
            "limit": page_size,
            "sortBy": "market_cap",
            "sortType": "desc",
            "convert": "USD",
            "cryptoType": "all",
            "tagType": "all",
            "audited": "false",
        }
        data = client.get_json(url, params)["data"]
        page = data.get("cryptoCurrencyList") or []
        entries.extend(page)
        if len(page) < page_size or len(entries) >= int(data.get("totalCount") or 0):
            break
    unique = first_by_rank(entries, "cmcRank")
    return pd.DataFrame([_listing_row(entry) for entry in unique], columns=_LISTING_ROW)


def first_by_rank(entries: list[dict[str, Any]], rank: str) -> list[dict[str, Any]]:
    """Each coin (``id``) once, in rank order: ranks shift while a listing is read page by page,
    so a coin that fell past a page boundary comes twice; its better (first) rank wins."""
    unique: dict[int, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: (e.get(rank) is None, e.get(rank) or 0)):
        unique.setdefault(int(entry["id"]), entry)
    return list(unique.values())


_LISTING_ROW = [
    "coin_id",
    "ticker",
    "coin_name",
    "slug",
    "rank",
    "market_cap",
    "last_update",
    "date_added",
    "tags",
]


def _listing_row(entry: dict[str, Any]) -> dict[str, Any]:
    usd = next((q for q in entry.get("quotes") or [] if q.get("name") == "USD"), {})
    return {
        "coin_id": int(entry["id"]),
        "ticker": entry["symbol"],
        "coin_name": entry["name"],
        "slug": entry["slug"],
        "rank": entry.get("cmcRank"),
        "market_cap": usd.get("marketCap"),
        "last_update": entry.get("lastUpdated"),
        "date_added": entry.get("dateAdded"),
        "tags": wire_tags(entry.get("tags")),
    }


@dataclass
class PageCount:
    """The calls a fetch made, for its log line."""

    calls: int = 0


# The statuses of every coin CoinMarketCap has known, dead and untracked ones included.
ALL_LISTING_STATUSES = "active,inactive,untracked"


def fetch_historical_listing(
    client: ApiClient, day: date, depth: int, pages: PageCount, page_size: int = LISTING_PAGE
) -> list[dict[str, Any]]:
    """The day's listing to ``depth`` as rows named like ``historical_listings``, values as
    published, in the answers' order (unreliable: the caller sorts by rank)."""
    url = f"{client.settings.data_api_url}/v3/cryptocurrency/listings/historical"
    params = {"date": day.isoformat(), "convertId": USD_ID, "sort": "cmc_rank", "sort_dir": "asc"}
    entries = fetch_pages(
        lambda paging: client.get_json(url, {**params, **paging})["data"], depth, page_size, pages
    )
    return [_historical_row(entry, day) for entry in entries]


def fetch_pages(
    get_page: Callable[[dict[str, int]], Any], depth: int, page_size: int, pages: PageCount
) -> list[dict[str, Any]]:
    """Entries from ``start``/``limit`` pages until ``depth`` of them or a short page."""
    limit = min(depth, page_size)
    entries: list[dict[str, Any]] = []
    while len(entries) < depth:
        page = get_page({"start": len(entries) + 1, "limit": limit})
        pages.calls += 1
        page = page if isinstance(page, list) else []  # a day without coins may answer {}
        entries.extend(page)
        if len(page) < limit:
            break
    return entries


def _historical_row(entry: dict[str, Any], day: date) -> dict[str, Any]:
    quotes = entry.get("quotes") or [{}]
    usd = next((q for q in quotes if str(q.get("name")) in ("USD", str(USD_ID))), quotes[0])
    return {
        "trade_date": day,
        "coin_id": entry.get("id"),
        "ticker": entry.get("symbol"),
        "coin_name": entry.get("name"),
        "slug": entry.get("slug"),
        "rank": entry.get("cmcRank"),
        "price": usd.get("price"),
        "market_cap": usd.get("marketCap"),
        "volume_24h": usd.get("volume24h"),
        "circulating_supply": entry.get("circulatingSupply"),
        "total_supply": entry.get("totalSupply"),
        "max_supply": entry.get("maxSupply"),
        "tags": wire_tags(entry.get("tags")),  # a list of slugs
    }


def fetch_coin_map(client: ApiClient) -> list[dict[str, Any]]:
    """Every coin of the map, dead and untracked ones too: id, name, symbol, slug, rank,
    is_active, first_historical_data, last_historical_data (one unpaged answer)."""
    url = f"{client.settings.data_api_url}/v1/cryptocurrency/map"
    data = client.get_json(url, {"listing_status": ALL_LISTING_STATUSES})["data"]
    return data if isinstance(data, list) else []


def fetch_daily_quotes(
    client: ApiClient,
    coin_id: int,
    first_day: date,
    last_day: date,
    pages: PageCount | None = None,
) -> list[dict[str, Any]]:
    """The coin's daily quotes of first_day..last_day, paging backwards: one call returns at most
    400 days, the newest up to timeEnd, and may ignore timeStart. ``pages`` counts the calls."""
    url = f"{client.settings.data_api_url}/v3.1/cryptocurrency/historical"
    time_start = _unix(first_day)
    cursor = _unix(last_day)
    quotes: list[dict[str, Any]] = []
    while cursor >= time_start:
        params = {
            "id": coin_id,
            "convertId": USD_ID,
            "timeStart": time_start,
            "timeEnd": cursor,
            "interval": "daily",
        }
        data = client.get_json(url, params)["data"]
        if pages is not None:
            pages.calls += 1
        page = data.get("quotes") or []
        quotes.extend(page)
        if not page:
            break
        opened = [_unix_of(quote.get("timeOpen")) for quote in page]
        if None in opened:
            raise InvalidCandlesError("a quote without a valid timeOpen")
        earliest = min(opened)
        # The answer's timeEnd is a cursor one second before its first candle.
        next_cursor = min(int(data.get("timeEnd") or earliest - 1), earliest - 1)
        if next_cursor >= cursor:
            break
        cursor = next_cursor
    return quotes


def quotes_to_candles(quotes: list[dict[str, Any]], coin_id: int, ticker: str) -> pd.DataFrame:
    """CANDLE_COLUMNS rows, values as published; the day is the UTC date of ``timeOpen``."""
    rows = [
        {
            "coin_id": coin_id,
            "ticker": ticker,
            "trade_date": candle_day(quote.get("timeOpen"), ticker),
            **{field: (quote.get("quote") or {}).get(key) for field, key in QUOTE_FIELDS.items()},
        }
        for quote in quotes
    ]
    frame = pd.DataFrame(rows, columns=["coin_id", "ticker", "trade_date", *CANDLE_FIELDS])
    frame["trade_date"] = pd.to_datetime(frame["trade_date"])
    return frame.astype({field: "object" for field in CANDLE_FIELDS})


def candle_day(time_open: object, ticker: str) -> pd.Timestamp:
    """The UTC day of an ISO timestamp such as ``2018-12-04T00:00:00.000Z``."""
    try:
        moment = datetime.fromisoformat(str(time_open).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise InvalidCandlesError(
            f"{ticker}: a quote has no valid timeOpen ({time_open!r})"
        ) from None
    return pd.Timestamp(moment.date())


def _unix(day: date) -> int:
    return int(datetime.combine(day, time(), tzinfo=UTC).timestamp())


def _unix_of(timestamp: object) -> int | None:
    try:
        return int(datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None
