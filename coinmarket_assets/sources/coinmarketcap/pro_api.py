"""The official Pro API (``X-CMC_PRO_API_KEY``): coin map, latest listings, and the historical
listings and daily OHLCV when the key's plan includes them."""

from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd

from coinmarket_assets.sources.coinmarketcap.client import ApiClient
from coinmarket_assets.sources.coinmarketcap.data_api import (
    ALL_LISTING_STATUSES,
    PageCount,
    fetch_pages,
    first_by_rank,
)
from coinmarket_assets.sources.coinmarketcap.listings import wire_tags

PAGE = 5000
PLAN_REFUSED = "1006"  # "Your API Key subscription plan doesn't support this endpoint."


def _get(client: ApiClient, path: str, params: dict[str, Any]) -> Any:
    headers = {"X-CMC_PRO_API_KEY": client.settings.api_key or ""}
    return client.get_json(f"{client.settings.pro_api_url}{path}", params, headers)["data"]


def fetch_listing(client: ApiClient, page_size: int = PAGE) -> pd.DataFrame:
    """Every coin of the map once, with market cap, dates and tags from the latest listings."""
    coins = _get(client, "/v1/cryptocurrency/map", {"listing_status": "active"})
    entries: list[dict[str, Any]] = []
    while True:
        page = _get(
            client,
            "/v1/cryptocurrency/listings/latest",
            {"start": len(entries) + 1, "limit": page_size, "convert": "USD"},
        )
        entries.extend(page)
        if len(page) < page_size:
            break
    latest = {int(entry["id"]): entry for entry in first_by_rank(entries, "cmc_rank")}
    rows = []
    for coin in coins:
        entry = latest.get(int(coin["id"]), {})
        usd = (entry.get("quote") or {}).get("USD") or {}
        rows.append(
            {
                "coin_id": int(coin["id"]),
                "ticker": coin["symbol"],
                "coin_name": coin["name"],
                "slug": coin["slug"],
                "rank": entry.get("cmc_rank", coin.get("rank")),
                "market_cap": usd.get("market_cap"),
                "last_update": entry.get("last_updated"),
                "date_added": entry.get("date_added") or coin.get("first_historical_data"),
                "tags": wire_tags(entry.get("tags")),
            }
        )
    return pd.DataFrame(rows)


def fetch_historical_listing(
    client: ApiClient, day: date, depth: int, pages: PageCount, page_size: int = PAGE
) -> list[dict[str, Any]]:
    """The day's listing to ``depth`` as rows named like ``historical_listings``, values as
    published, in the answers' order (the caller sorts by rank)."""
    params = {"date": day.isoformat(), "convert": "USD", "sort": "cmc_rank", "sort_dir": "asc"}
    entries = fetch_pages(
        lambda paging: _get(client, "/v1/cryptocurrency/listings/historical", params | paging),
        depth,
        page_size,
        pages,
    )
    return [_historical_row(entry, day) for entry in entries]


def _historical_row(entry: dict[str, Any], day: date) -> dict[str, Any]:
    usd = (entry.get("quote") or {}).get("USD") or {}
    return {
        "trade_date": day,
        "coin_id": entry.get("id"),
        "ticker": entry.get("symbol"),
        "coin_name": entry.get("name"),
        "slug": entry.get("slug"),
        "rank": entry.get("cmc_rank"),
        "price": usd.get("price"),
        "market_cap": usd.get("market_cap"),
        "volume_24h": usd.get("volume_24h"),
        "circulating_supply": entry.get("circulating_supply"),
        "total_supply": entry.get("total_supply"),
        "max_supply": entry.get("max_supply"),
        "tags": wire_tags(entry.get("tags")),  # a list of strings (slugs)
    }


def fetch_coin_map(client: ApiClient, page_size: int = PAGE) -> list[dict[str, Any]]:
    """Every coin of the map, dead and untracked ones too, in pages."""
    params = {"listing_status": ALL_LISTING_STATUSES}
    entries: list[dict[str, Any]] = []
    while True:
        page = _get(
            client,
            "/v1/cryptocurrency/map",
            params | {"start": len(entries) + 1, "limit": page_size},
        )
        entries.extend(page)
        if len(page) < page_size:
            return entries


def fetch_daily_quotes(
    client: ApiClient, coin_id: int, first_day: date, last_day: date
) -> list[dict[str, Any]]:
    """Daily quotes in the data-api's shape (``timeOpen``, ``quote.marketCap``, ...)."""
    # time_start is exclusive: start one second before the first day.
    start = datetime.combine(first_day, time()) - timedelta(seconds=1)
    data = _get(
        client,
        "/v2/cryptocurrency/ohlcv/historical",
        {
            "id": coin_id,
            "time_start": start.isoformat() + "Z",
            "time_end": datetime.combine(last_day, time()).isoformat() + "Z",
            "time_period": "daily",
            "interval": "daily",
            "convert": "USD",
        },
    )
    return [
        {
            "timeOpen": quote.get("time_open"),
            "quote": {
                **(usd := (quote.get("quote") or {}).get("USD") or {}),
                "marketCap": usd.get("market_cap"),
            },
        }
        for quote in data.get("quotes") or []
    ]
