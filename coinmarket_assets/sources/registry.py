"""Choosing the source from ``COINMARKET_SOURCE``."""

from pathlib import Path

from coinmarket_assets.sources.base import MarketDataSource, SourceError

DEFAULT_SOURCE = "coinmarketcap"


def open_source(spec: str) -> MarketDataSource:
    """The source named by ``spec``: ``coinmarketcap``, ``csv:DIR`` or ``html:DIR``."""
    kind, _, argument = spec.strip().partition(":")
    if kind == "csv" and argument:
        from coinmarket_assets.sources.csv_source import CsvSource

        return CsvSource(Path(argument).expanduser().resolve())
    if kind == "html" and argument:
        from coinmarket_assets.sources.html_source import HtmlSource

        return HtmlSource(Path(argument).expanduser().resolve())
    if kind == DEFAULT_SOURCE and not argument:
        from coinmarket_assets.sources.coinmarketcap.source import CoinMarketCapSource

        return CoinMarketCapSource.from_env()
    raise SourceError(
        f"COINMARKET_SOURCE={spec!r} is not a known source; use coinmarketcap, csv:DIR or html:DIR"
    )
