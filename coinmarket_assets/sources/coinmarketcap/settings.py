"""Settings of the CoinMarketCap client: ``ClientSettings`` is declared with every other setting
in ``coinmarket_assets.settings``; this module adds what is not a setting."""

from coinmarket_assets.settings import DATA_API_URL, PRO_API_URL, ClientSettings

# CoinMarketCap's own site uses this API; a browser-like agent is required, a robot one refused.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36 coinmarket_assets"
)

__all__ = ["DATA_API_URL", "PRO_API_URL", "USER_AGENT", "ClientSettings"]
