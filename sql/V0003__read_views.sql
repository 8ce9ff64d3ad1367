-- Read-side views for the questions users ask most. Both read the candles through their
-- primary key index, so they stay fast on hundreds of coins times years of days.

-- latest_market: one row per coin that has stored candles: its newest candle, that day's
-- statistics, and its place in that day's top / bottom ranking (NULL when not ranked).
-- ticker, coin_name, slug and cmc_rank come from currency_status (cmc_rank is CoinMarketCap's
-- rank at its last_update); a coin without metadata keeps the ticker of its newest candle.
CREATE VIEW latest_market AS
WITH RECURSIVE stored_coins (coin_id) AS (
    -- The distinct coin ids by walking the primary key index (a "loose index scan"): one probe
    -- per coin instead of reading every candle.
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
    b.rank AS bottom_rank
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
LEFT JOIN bottom_ranking b ON b.trade_date = c.trade_date AND b.coin_id = c.coin_id;

-- daily_closes: one row per day with at least one stored candle. coin_ids, tickers and closes
-- are parallel arrays over the same coins (those of latest_market, ordered by ticker, then
-- coin id), identical on every row of a query; closes[i] is NULL when coin i has no candle
-- that day (a gap, or before its listing). Arrays rather than a jsonb map: closes keep their
-- exact double precision value, and two coins sharing a ticker stay apart.
-- Example: SELECT trade_date, closes[array_position(tickers, 'BTC')] FROM daily_closes;
-- A filter on trade_date narrows the days first; each day then costs one primary-key
-- probe per coin (about 1 ms for 500 coins).
CREATE VIEW daily_closes AS
WITH tracked AS (
    SELECT
        array_agg(coin_id ORDER BY ticker, coin_id) AS coin_ids,
        array_agg(ticker ORDER BY ticker, coin_id) AS tickers
    FROM latest_market
)
SELECT
    d.trade_date,
    t.coin_ids,
    t.tickers,
    ARRAY(
        SELECT h.close
        FROM unnest(t.coin_ids) WITH ORDINALITY AS c (coin_id, position)
        LEFT JOIN historical_trade_data h ON h.coin_id = c.coin_id AND h.trade_date = d.trade_date
        ORDER BY c.position
    ) AS closes
FROM (SELECT DISTINCT trade_date FROM historical_trade_data) d
CROSS JOIN tracked t;
