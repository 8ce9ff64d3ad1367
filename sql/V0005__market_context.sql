-- The market's context: CoinMarketCap's global metrics of each day, a point-in-time
-- capitalisation-weighted index of the top coins, and the coins' tags.

-- global_metrics: the whole market at the end of day D (USD), as CoinMarketCap published it.
CREATE TABLE global_metrics (
    trade_date              date PRIMARY KEY,
    total_market_cap        double precision,
    total_volume_24h        double precision,
    altcoin_market_cap      double precision,
    altcoin_volume_24h      double precision,
    btc_dominance           double precision,
    eth_dominance           double precision,
    active_cryptocurrencies integer,
    active_exchanges        integer,
    active_market_pairs     integer
);

-- market_index: the day's return of the capitalisation-weighted index of the top
-- COINMARKET_INDEX_SIZE coins of the listing of D - 1 (weights from that listing's market caps).
CREATE TABLE market_index (
    trade_date         date PRIMARY KEY,
    index_return       double precision NOT NULL,
    members            integer NOT NULL CHECK (members > 0),
    top_weight_coin_id integer NOT NULL,
    top_weight         double precision NOT NULL
);

-- market_index_levels: 1000 times the product of (1 + index_return) from the first stored day to
-- D. A running product (not exp(sum(ln))), so the level is the plain multiplication day by day.
CREATE AGGREGATE coinmarket_product (double precision) (
    SFUNC = float8mul,
    STYPE = double precision,
    INITCOND = '1'
);
CREATE VIEW market_index_levels AS
SELECT
    trade_date,
    1000 * coinmarket_product(1 + index_return) OVER (ORDER BY trade_date) AS level
FROM market_index;

-- A coin's CoinMarketCap tags (stablecoin, wrapped-tokens, ...), ';'-separated and sorted; NULL
-- where the source gives none. A listing's tags are the coin's tags as listed that day.
ALTER TABLE currency_status ADD COLUMN tags text;
ALTER TABLE historical_listings ADD COLUMN tags text;

-- latest_context: the newest day's market, beside the newest index level.
CREATE VIEW latest_context AS
SELECT
    g.trade_date,
    g.total_market_cap,
    g.total_volume_24h,
    g.btc_dominance,
    g.eth_dominance,
    i.trade_date AS index_date,
    i.level AS index_level
FROM (SELECT * FROM global_metrics ORDER BY trade_date DESC LIMIT 1) g
FULL JOIN (SELECT * FROM market_index_levels ORDER BY trade_date DESC LIMIT 1) i ON true;
