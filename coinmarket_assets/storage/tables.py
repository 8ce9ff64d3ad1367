"""The data tables, described once: columns (type, nullability, meaning), keys and write scope.

The migrations in ``sql/`` create the tables (a test checks that this description matches what
they create). The IO manager reads and writes by it, sources and ``compute/`` take their column
lists from it, and each table asset carries its column schema, so the UI shows the columns
before anything is materialized. Light on purpose: Dagster is imported only to build metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import TableSchema

# Column types as the IO manager loads them into pandas.
ID = "int64"
NULLABLE_INT = "Int64"  # an integer column that may be NULL
TEXT = "str"
FLOAT = "float64"
DATE = "date"  # datetime64 at midnight
TIMESTAMP = "timestamptz"  # timezone-aware datetime64 in UTC
BOOL = "boolean"  # pandas' nullable boolean

# Each type's PostgreSQL type, as information_schema names it.
SQL_TYPES = {
    ID: "integer",
    TEXT: "text",
    FLOAT: "double precision",
    DATE: "date",
    TIMESTAMP: "timestamp with time zone",
    BOOL: "boolean",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # ID, TEXT, FLOAT, DATE, TIMESTAMP or BOOL
    description: str
    nullable: bool = False

    @property
    def load_type(self) -> str:
        return NULLABLE_INT if self.type == ID and self.nullable else self.type


@dataclass(frozen=True)
class TableSpec:
    name: str
    column_defs: tuple[Column, ...]  # in table order
    primary_key: tuple[str, ...]
    # Partitioned tables replace the rows of the written days; None means upsert by primary key.
    date_column: str | None = "trade_date"
    # Per-coin tables replace only the written coins' rows on those days.
    coin_column: str | None = "coin_id"
    # Values whose changes a rewrite of stored days counts as revisions.
    revision_columns: tuple[str, ...] = ()
    # CHECK constraints, as written in the migration.
    checks: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.column_defs)

    @property
    def types(self) -> Mapping[str, str]:
        """Column -> load type, in table order."""
        return {column.name: column.load_type for column in self.column_defs}

    def only(self, columns: Sequence[str]) -> TableSpec:
        """The same table, read as ``columns`` alone (in the table's order)."""
        unknown = sorted(set(columns) - set(self.columns))
        if unknown:
            raise KeyError(f"{self.name} has no column {', '.join(unknown)}")
        return replace(self, column_defs=tuple(c for c in self.column_defs if c.name in columns))

    def column_schema(self) -> TableSchema:
        """The columns as Dagster's ``TableSchema``: SQL types, nullability, descriptions, keys."""
        from dagster import TableColumn, TableColumnConstraints, TableConstraints, TableSchema

        single_key = self.primary_key if len(self.primary_key) == 1 else ()
        return TableSchema(
            columns=[
                TableColumn(
                    column.name,
                    SQL_TYPES[column.type],
                    column.description,
                    TableColumnConstraints(
                        nullable=column.nullable, unique=column.name in single_key
                    ),
                )
                for column in self.column_defs
            ],
            constraints=TableConstraints(
                other=[
                    f"PRIMARY KEY ({', '.join(self.primary_key)})",
                    *(f"CHECK ({check})" for check in self.checks),
                ]
            ),
        )

    def asset_metadata(self) -> dict[str, object]:
        """The definition metadata of the table's asset: its name and column schema."""
        return {"dagster/table_name": self.name, "dagster/column_schema": self.column_schema()}


def _coin_day(day: str) -> tuple[Column, ...]:
    return (
        Column("coin_id", ID, "CoinMarketCap's id of the coin."),
        Column("ticker", TEXT, "The coin's symbol on that day, as its candle has it."),
        Column("trade_date", DATE, day),
    )


_CANDLE = (
    Column("open", FLOAT, "Price in USD at the day's open (00:00 UTC)."),
    Column("high", FLOAT, "Highest price in USD during the day."),
    Column("low", FLOAT, "Lowest price in USD during the day."),
    Column("close", FLOAT, "Price in USD at the day's close (24:00 UTC)."),
    Column("volume", FLOAT, "Volume traded during the day, in USD."),
    Column("market_cap", FLOAT, "Market capitalisation in USD at the day's close."),
)
_RANKING = (
    Column("trade_date", DATE, "The UTC day ranked."),
    Column("rank", ID, "Place among the day's coins, from 1; ties by ticker, then coin id."),
    Column("coin_id", ID, "CoinMarketCap's id of the coin."),
    Column("ticker", TEXT, "The coin's symbol in period_returns that day."),
    Column("period_return", FLOAT, "The coin's period return that day, from period_returns."),
)


def _ranking(name: str) -> TableSpec:
    return TableSpec(
        name, _RANKING, primary_key=("trade_date", "rank"), coin_column=None, checks=("rank > 0",)
    )


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "currency_status",
            (
                Column("coin_id", ID, "CoinMarketCap's id of the coin."),
                Column("ticker", TEXT, "The coin's symbol (BTC); several coins may share one."),
                Column("coin_name", TEXT, "The coin's name."),
                Column("slug", TEXT, "CoinMarketCap's URL name of the coin, unique to it."),
                Column("rank", ID, "CoinMarketCap's rank at last_update; NULL if unranked.", True),
                Column("market_cap", FLOAT, "Market capitalisation in USD at last_update.", True),
                Column("last_update", TIMESTAMP, "When the source last updated the row.", True),
                Column(
                    "is_active",
                    BOOL,
                    "Whether CoinMarketCap still tracks the coin; false once it died.",
                    True,
                ),
                Column(
                    "first_historical_day",
                    DATE,
                    "The first UTC day CoinMarketCap has data of the coin.",
                    True,
                ),
                Column(
                    "last_historical_day",
                    DATE,
                    "The last UTC day CoinMarketCap has data of the coin (recent if active).",
                    True,
                ),
                Column(
                    "tags",
                    TEXT,
                    "The coin's CoinMarketCap tags, ';'-separated and sorted; NULL if unknown.",
                    True,
                ),
            ),
            primary_key=("coin_id",),
            date_column=None,
        ),
        TableSpec(
            "historical_listings",
            (
                Column("trade_date", DATE, "The UTC day of the listing (partition D is day D)."),
                Column("coin_id", ID, "CoinMarketCap's id of the coin."),
                Column("ticker", TEXT, "The coin's symbol that day."),
                Column("coin_name", TEXT, "The coin's name that day."),
                Column("slug", TEXT, "CoinMarketCap's URL name of the coin."),
                Column("rank", ID, "CoinMarketCap's rank of the coin that day, from 1."),
                Column("price", FLOAT, "Price in USD that day."),
                Column("market_cap", FLOAT, "Market capitalisation in USD that day.", True),
                Column("volume_24h", FLOAT, "Volume of the last 24 hours in USD.", True),
                Column("circulating_supply", FLOAT, "Coins in circulation.", True),
                Column("total_supply", FLOAT, "Coins in existence, minus those burned.", True),
                Column("max_supply", FLOAT, "Most coins there will ever be; NULL if none.", True),
                Column(
                    "tags", TEXT, "The coin's tags as listed that day, ';'-separated, sorted.", True
                ),
            ),
            primary_key=("trade_date", "coin_id"),
            # A day is replaced whole: the listing of the day as the source gave it.
            coin_column=None,
            checks=("rank > 0",),
        ),
        TableSpec(
            "global_metrics",
            (
                Column(
                    "trade_date", DATE, "The UTC day; its values as the market stood at its end."
                ),
                Column("total_market_cap", FLOAT, "All coins' market capitalisation in USD.", True),
                Column(
                    "total_volume_24h", FLOAT, "All coins' volume of the last 24 h in USD.", True
                ),
                Column("altcoin_market_cap", FLOAT, "Market capitalisation but Bitcoin's.", True),
                Column("altcoin_volume_24h", FLOAT, "Volume of the last 24 h but Bitcoin's.", True),
                Column("btc_dominance", FLOAT, "Bitcoin's share of the market cap, in %.", True),
                Column("eth_dominance", FLOAT, "Ether's share of the market cap, in %.", True),
                Column("active_cryptocurrencies", ID, "Coins CoinMarketCap tracked.", True),
                Column("active_exchanges", ID, "Exchanges CoinMarketCap tracked.", True),
                Column("active_market_pairs", ID, "Market pairs CoinMarketCap tracked.", True),
            ),
            primary_key=("trade_date",),
            coin_column=None,
        ),
        TableSpec(
            "historical_trade_data",
            (
                *_coin_day("The UTC day of the candle (partition D is day D)."),
                *_CANDLE,
                Column("source", TEXT, "The source that published the candle (csv, ...).", True),
                Column("fetched_at", TIMESTAMP, "When the candle was fetched.", True),
            ),
            primary_key=("coin_id", "trade_date"),
            revision_columns=tuple(column.name for column in _CANDLE),
        ),
        TableSpec(
            "historical_rolling",
            (
                *_coin_day("The UTC day of the candle whose close ends the windows."),
                Column(
                    "rsi",
                    FLOAT,
                    "Wilder's RSI (COINMARKET_RSI_PERIOD) of the stored closes of the lookback "
                    "ending at trade_date; NULL while too few are stored.",
                    True,
                ),
                Column(
                    "std_dev",
                    FLOAT,
                    "Population standard deviation of the last COINMARKET_STD_WINDOW closes; "
                    "NULL while too few are stored.",
                    True,
                ),
            ),
            primary_key=("coin_id", "trade_date"),
        ),
        TableSpec(
            "period_returns",
            (
                *_coin_day("The UTC day whose close ends the period."),
                Column(
                    "period_return",
                    FLOAT,
                    "close(trade_date) / close(COINMARKET_RETURN_DAYS days before) - 1.",
                ),
            ),
            primary_key=("coin_id", "trade_date"),
        ),
        TableSpec(
            "market_index",
            (
                Column("trade_date", DATE, "The UTC day whose closes end the index's day."),
                Column(
                    "index_return",
                    FLOAT,
                    "Sum over the members of weight x (close(D) / close(D - 1) - 1).",
                ),
                Column("members", ID, "Coins in the index that day."),
                Column("top_weight_coin_id", ID, "The member of the largest weight."),
                Column("top_weight", FLOAT, "That member's weight, from 0 to 1."),
            ),
            primary_key=("trade_date",),
            coin_column=None,
            checks=("members > 0",),
        ),
        _ranking("top_ranking"),
        _ranking("bottom_ranking"),
    ]
}

# Tables that hold the pipeline's own state, not an asset: the N of a top:N universe.
STATE_TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "universe_settings",
            (
                Column("singleton", BOOL, "Always true: the table holds one row."),
                Column(
                    "top_n",
                    ID,
                    "The N of COINMARKET_TICKERS=top:N at the last listings run; NULL otherwise.",
                    True,
                ),
                Column("updated_at", TIMESTAMP, "When historical_listings last wrote it."),
            ),
            primary_key=("singleton",),
            date_column=None,
            coin_column=None,
            checks=("singleton = true", "top_n > 0"),
        ),
    ]
}

# The daily tables, in the order the graph computes them.
DAILY_TABLES: tuple[str, ...] = tuple(name for name, spec in TABLES.items() if spec.date_column)
