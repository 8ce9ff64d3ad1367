-- The coin market schema: coin metadata, raw daily candles and the statistics derived from them.
-- Prices and statistics are double precision; days are UTC calendar days.

CREATE TABLE currency_status (
    coin_id     integer PRIMARY KEY,
    ticker      text NOT NULL,
    coin_name   text NOT NULL,
    slug        text NOT NULL,
    rank        integer,
    market_cap  double precision,
    last_update timestamptz
);

CREATE TABLE historical_trade_data (
    coin_id    integer NOT NULL,
    ticker     text NOT NULL,
    trade_date date NOT NULL,
    open       double precision NOT NULL,
    high       double precision NOT NULL,
    low        double precision NOT NULL,
    close      double precision NOT NULL,
    volume     double precision NOT NULL,
    market_cap double precision NOT NULL,
    PRIMARY KEY (coin_id, trade_date)
);
CREATE INDEX historical_trade_data_trade_date_idx ON historical_trade_data (trade_date);

CREATE TABLE historical_rolling (
    coin_id    integer NOT NULL,
    ticker     text NOT NULL,
    trade_date date NOT NULL,
    rsi        double precision,
    std_dev    double precision,
    PRIMARY KEY (coin_id, trade_date)
);
CREATE INDEX historical_rolling_trade_date_idx ON historical_rolling (trade_date);

CREATE TABLE period_returns (
    coin_id       integer NOT NULL,
    ticker        text NOT NULL,
    trade_date    date NOT NULL,
    period_return double precision NOT NULL,
    PRIMARY KEY (coin_id, trade_date)
);
CREATE INDEX period_returns_trade_date_idx ON period_returns (trade_date);

CREATE TABLE top_ranking (
    trade_date    date NOT NULL,
    rank          integer NOT NULL CHECK (rank > 0),
    coin_id       integer NOT NULL,
    ticker        text NOT NULL,
    period_return double precision NOT NULL,
    PRIMARY KEY (trade_date, rank)
);

CREATE TABLE bottom_ranking (
    trade_date    date NOT NULL,
    rank          integer NOT NULL CHECK (rank > 0),
    coin_id       integer NOT NULL,
    ticker        text NOT NULL,
    period_return double precision NOT NULL,
    PRIMARY KEY (trade_date, rank)
);
