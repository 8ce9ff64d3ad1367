"""Where market data comes from: one small interface, and a source per origin."""

from coinmarket_assets.sources.base import Coin, MarketDataSource, SourceError, resolve_universe
from coinmarket_assets.sources.registry import DEFAULT_SOURCE, open_source

__all__ = [
    "DEFAULT_SOURCE",
    "Coin",
    "MarketDataSource",
    "SourceError",
    "open_source",
    "resolve_universe",
]
