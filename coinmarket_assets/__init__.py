"""CoinMarketCap daily market data as a Dagster asset graph persisted in PostgreSQL."""

from coinmarket_assets import masking

# Every process that loads any part of the project (the launcher, the UI, the daemon, a run and
# its steps) masks the configured secrets in its log records and uncaught exceptions.
masking.install()
