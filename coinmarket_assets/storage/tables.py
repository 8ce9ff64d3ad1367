"""The data tables the IO manager writes: their columns and types, keys, and write scope."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

# Column types as the IO manager loads them into pandas.
ID = "int64"
NULLABLE_INT = "Int64"
TEXT = "str"
FLOAT = "float64"
DATE = "date"  # datetime64 at midnight
TIMESTAMP = "timestamptz"  # timezone-aware datetime64 in UTC


@dataclass(frozen=True)
class TableSpec:
    name: str
    types: Mapping[str, str]  # column -> type, in table order
    primary_key: tuple[str, ...]
    # Partitioned tables replace the rows of the written days; None means upsert by primary key.
    date_column: str | None = "trade_date"
    # Per-coin tables replace only the written coins' rows on those days.
    coin_column: str | None = "coin_id"
    # Values whose changes a rewrite of stored days counts as revisions.
    revision_columns: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.types)

    def only(self, columns: Sequence[str]) -> "TableSpec":
        """The same table, read as ``columns`` alone (in the table's order)."""
        unknown = sorted(set(columns) - set(self.types))
        if unknown:
            raise KeyError(f"{self.name} has no column {', '.join(unknown)}")
        return replace(self, types={c: t for c, t in self.types.items() if c in columns})


_COIN_DAY = {"coin_id": ID, "ticker": TEXT, "trade_date": DATE}
_RANKING = {"trade_date": DATE, "rank": ID, "coin_id": ID, "ticker": TEXT, "period_return": FLOAT}
_CANDLE = dict.fromkeys(("open", "high", "low", "close", "volume", "market_cap"), FLOAT)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "currency_status",
            {
                "coin_id": ID,
                "ticker": TEXT,
                "coin_name": TEXT,
                "slug": TEXT,
                "rank": NULLABLE_INT,
                "market_cap": FLOAT,
                "last_update": TIMESTAMP,
            },
            primary_key=("coin_id",),
            date_column=None,
        ),
        TableSpec(
            "historical_trade_data",
            {**_COIN_DAY, **_CANDLE, "source": TEXT, "fetched_at": TIMESTAMP},
            primary_key=("coin_id", "trade_date"),
            revision_columns=tuple(_CANDLE),
        ),
        TableSpec(
            "historical_rolling",
            {**_COIN_DAY, "rsi": FLOAT, "std_dev": FLOAT},
            primary_key=("coin_id", "trade_date"),
        ),
        TableSpec(
            "period_returns",
            {**_COIN_DAY, "period_return": FLOAT},
            primary_key=("coin_id", "trade_date"),
        ),
        TableSpec("top_ranking", _RANKING, primary_key=("trade_date", "rank"), coin_column=None),
        TableSpec("bottom_ranking", _RANKING, primary_key=("trade_date", "rank"), coin_column=None),
    ]
}
