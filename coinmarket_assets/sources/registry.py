"""Choosing the source from ``COINMARKET_SOURCE``."""

from pathlib import Path

from coinmarket_assets.sources.base import MarketDataSource, SourceError

DEFAULT_SOURCE = "coinmarketcap"


def open_source(spec: str) -> MarketDataSource:
    """The source named by ``spec``: ``csv:DIR`` or ``coinmarketcap``."""
    kind, _, argument = spec.strip().partition(":")
    if kind == "csv" and argument:
        from coinmarket_assets.sources.csv_source import CsvSource

        return CsvSource(Path(argument).expanduser().resolve())
    if kind == DEFAULT_SOURCE and not argument:
        raise SourceError(
            "COINMARKET_SOURCE=coinmarketcap (the default) is the live CoinMarketCap client, "
            "which this version does not include yet. Set COINMARKET_SOURCE=csv:DIR to load "
            "local files (DIR/coins.csv and DIR/daily/<TICKER>.csv)."
        )
    raise SourceError(
        f"COINMARKET_SOURCE={spec!r} is not a known source; use csv:DIR or coinmarketcap"
    )
