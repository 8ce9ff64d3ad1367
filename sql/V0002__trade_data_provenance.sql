-- Where each candle came from and when it was fetched: CoinMarketCap revises history, and a
-- re-fetch replaces a stored candle whose values changed.
ALTER TABLE historical_trade_data
    ADD COLUMN source text,
    ADD COLUMN fetched_at timestamptz;
