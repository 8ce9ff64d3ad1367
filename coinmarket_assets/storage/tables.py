"""The data tables the IO manager writes: their columns, keys and how a write is scoped."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    # Partitioned tables replace the rows of the written days; None means upsert by primary key.
    date_column: str | None = "trade_date"
    # Per-coin tables replace only the written coins' rows on those days.
    coin_column: str | None = "coin_id"


_RANKING = ("trade_date", "rank", "coin_id", "ticker", "period_return")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "currency_status",
            ("coin_id", "ticker", "coin_name", "slug", "rank", "market_cap", "last_update"),
            primary_key=("coin_id",),
            date_column=None,
        ),
        TableSpec(
            "historical_trade_data",
            (
                "coin_id",
                "ticker",
                "trade_date",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "market_cap",
            ),
            primary_key=("coin_id", "trade_date"),
        ),
        TableSpec(
            "historical_rolling",
            ("coin_id", "ticker", "trade_date", "rsi", "std_dev"),
            primary_key=("coin_id", "trade_date"),
        ),
        TableSpec(
            "period_returns",
            ("coin_id", "ticker", "trade_date", "period_return"),
            primary_key=("coin_id", "trade_date"),
        ),
        TableSpec("top_ranking", _RANKING, primary_key=("trade_date", "rank"), coin_column=None),
        TableSpec("bottom_ranking", _RANKING, primary_key=("trade_date", "rank"), coin_column=None),
    ]
}
