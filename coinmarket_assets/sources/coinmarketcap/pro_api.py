"""The official Pro API (``X-CMC_PRO_API_KEY``): coin map, latest listings, and daily OHLCV
when the key's plan includes it."""

from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd

from coinmarket_assets.sources.coinmarketcap.client import ApiClient
from coinmarket_assets.sources.coinmarketcap.data_api import first_by_rank

PAGE = 5000
PLAN_REFUSED = "1006"  # "Your API Key subscription plan doesn't support this endpoint."


def _get(client: ApiClient, path: str, params: dict[str, Any]) -> Any:
    headers = {"X-CMC_PRO_API_KEY": client.settings.api_key or ""}
    return client.get_json(f"{client.settings.pro_api_url}{path}", params, headers)["data"]


def fetch_listing(client: ApiClient, page_size: int = PAGE) -> pd.DataFrame:
    """Every coin of the map once, with market cap and dates from the latest listings."""
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
            }
        )
    return pd.DataFrame(rows)


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
