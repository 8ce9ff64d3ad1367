"""CoinMarketCap daily market data as a Dagster asset graph persisted in PostgreSQL."""
