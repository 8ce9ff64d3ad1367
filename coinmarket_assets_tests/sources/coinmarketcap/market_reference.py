"""What the local CoinMarketCap should answer, read in plain Python from its ``SyntheticMarket``:
the rules of the server's listings and map as stated, not its code."""

import math
from datetime import date, timedelta

import pandas as pd

from coinmarket_testkit.synthetic import SyntheticMarket


def reference_listings(
    market: SyntheticMarket, first: date, last: date, depth: int
) -> pd.DataFrame:
    """Each day's coins with a candle that day, by market cap descending (ties by id), the
    ``depth`` first: price is the close, supplies follow from market cap and close; tags as
    stored (sorted, ';'-joined, None when none)."""
    rows = []
    day = first
    while day <= last:
        listed = []
        for coin in market.coins:
            candle = coin.candles[coin.candles["date"] == pd.Timestamp(day)]
            if len(candle):
                listed.append((coin, candle.iloc[0]))
        listed.sort(key=lambda e: (-e[1]["market_cap"], e[0].coin_id))
        for rank, (coin, candle) in enumerate(listed[:depth], 1):
            supply = float(round(candle["market_cap"] / candle["close"]))
            rows.append(
                {
                    "trade_date": pd.Timestamp(day),
                    "coin_id": coin.coin_id,
                    "ticker": coin.ticker,
                    "coin_name": coin.name,
                    "slug": coin.slug,
                    "rank": rank,
                    "price": candle["close"],
                    "market_cap": candle["market_cap"],
                    "volume_24h": candle["volume"],
                    "circulating_supply": supply,
                    "total_supply": supply,
                    "max_supply": math.nan if coin.coin_id % 2 == 0 else 2 * supply,
                    "tags": ";".join(sorted({tag.lower() for tag in coin.tags})) or None,
                }
            )
        day += timedelta(days=1)
    return pd.DataFrame(rows)


def reference_map(market: SyntheticMarket) -> pd.DataFrame:
    """Each coin's first and last candle day; active when its candles reach the market's last
    day."""
    today = max(coin.candles["date"].max() for coin in market.coins)
    rows = [
        {
            "coin_id": coin.coin_id,
            "ticker": coin.ticker,
            "is_active": bool(coin.candles["date"].max() == today),
            "first_historical_day": coin.candles["date"].min(),
            "last_historical_day": coin.candles["date"].max(),
        }
        for coin in market.coins
    ]
    return pd.DataFrame(rows).sort_values("coin_id", ignore_index=True)
