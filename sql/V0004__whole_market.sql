-- The whole market as it stood each day: CoinMarketCap's listing of each day, each coin's life
-- on CoinMarketCap, and the point-in-time universe of COINMARKET_TICKERS=top:N.

-- historical_listings: the listing of day D as it stood on D (the top COINMARKET_LISTING_DEPTH
-- coins by CoinMarketCap's rank that day). Coins that have since died stay in the days they were
-- listed, so a ranking of day D never depends on which coins survived.
CREATE TABLE historical_listings (
    trade_date         date NOT NULL,
    coin_id            integer NOT NULL,
    ticker             text NOT NULL,
    coin_name          text NOT NULL,
    slug               text NOT NULL,
    rank               integer NOT NULL CHECK (rank > 0),
    price              double precision NOT NULL,
    market_cap         double precision,
    volume_24h         double precision,
    circulating_supply double precision,
    total_supply       double precision,
    max_supply         double precision,
    PRIMARY KEY (trade_date, coin_id)
);
-- A day's top N, and a coin's listed days (its latest rank, the days its candles are fetched).
CREATE INDEX historical_listings_rank_idx ON historical_listings (trade_date, rank);
CREATE INDEX historical_listings_coin_idx ON historical_listings (coin_id, trade_date);

-- A coin's life on CoinMarketCap, from the source's coin map (active, inactive and untracked).
ALTER TABLE currency_status
    ADD COLUMN is_active boolean,
    ADD COLUMN first_historical_day date,
    ADD COLUMN last_historical_day date;

-- The N of COINMARKET_TICKERS=top:N that the last materialization of historical_listings ran
-- with (NULL in the other modes): universe_membership reads it, so the view needs no setting.
CREATE TABLE universe_settings (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton = true),
    top_n      integer CHECK (top_n > 0),
    updated_at timestamptz NOT NULL
);

-- universe_membership: the members of each stored day, as the market stood that day.
CREATE VIEW universe_membership AS
SELECT l.trade_date, l.coin_id, l.rank
FROM historical_listings l
JOIN universe_settings u ON l.rank <= u.top_n;

-- latest_market gains listing_rank: the coin's rank in the listing of its newest candle's day
-- (NULL when that day's stored listing does not hold it).
CREATE OR REPLACE VIEW latest_market AS
WITH RECURSIVE stored_coins (coin_id) AS (
    (SELECT coin_id FROM historical_trade_data ORDER BY coin_id LIMIT 1)
    UNION ALL
    SELECT (
        SELECT h.coin_id FROM historical_trade_data h
        WHERE h.coin_id > s.coin_id
        ORDER BY h.coin_id
        LIMIT 1
    )
    FROM stored_coins s
    WHERE s.coin_id IS NOT NULL
)
SELECT
    c.coin_id,
    coalesce(m.ticker, c.ticker) AS ticker,
    m.coin_name,
    m.slug,
    m.rank AS cmc_rank,
    c.trade_date,
    c.open,
    c.high,
    c.low,
    c.close,
    c.volume,
    c.market_cap,
    r.rsi,
    r.std_dev,
    p.period_return,
    t.rank AS top_rank,
    b.rank AS bottom_rank,
    l.rank AS listing_rank
FROM stored_coins s
CROSS JOIN LATERAL (
    SELECT h.* FROM historical_trade_data h
    WHERE h.coin_id = s.coin_id
    ORDER BY h.trade_date DESC
    LIMIT 1
) c
LEFT JOIN currency_status m ON m.coin_id = c.coin_id
LEFT JOIN historical_rolling r ON r.coin_id = c.coin_id AND r.trade_date = c.trade_date
LEFT JOIN period_returns p ON p.coin_id = c.coin_id AND p.trade_date = c.trade_date
LEFT JOIN top_ranking t ON t.trade_date = c.trade_date AND t.coin_id = c.coin_id
LEFT JOIN bottom_ranking b ON b.trade_date = c.trade_date AND b.coin_id = c.coin_id
LEFT JOIN historical_listings l ON l.trade_date = c.trade_date AND l.coin_id = c.coin_id;
