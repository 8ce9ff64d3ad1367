"""``DIR/listings.csv``: the market's listing of each day, read with Arrow.

Header ``date,coin_id,ticker,name,slug,rank,price,market_cap,volume_24h,circulating_supply,
total_supply,max_supply`` (the last five may be empty), and optionally ``tags`` (the coin's
CoinMarketCap tags that day, ';'-separated); other columns are ignored. Rows may come in any
order. The file is read in blocks and only the requested days are kept, so memory follows the
days asked for, not the file.
"""

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from coinmarket_assets.sources.base import HISTORICAL_LISTING_COLUMNS, SourceError, tag_text

LISTINGS_FILE = "listings.csv"
LISTINGS_HEADER = [
    "date",
    "coin_id",
    "ticker",
    "name",
    "slug",
    "rank",
    "price",
    "market_cap",
    "volume_24h",
    "circulating_supply",
    "total_supply",
    "max_supply",
]
_NUMBERS = LISTINGS_HEADER[6:]
_TYPED = {
    "date": pa.date32(),
    "coin_id": pa.int64(),
    "ticker": pa.string(),
    "name": pa.string(),
    "slug": pa.string(),
    "rank": pa.int64(),
} | dict.fromkeys(_NUMBERS, pa.float64())
TAGS = "tags"  # optional
_BLOCK_BYTES = 16 << 20


def read_listing_rows(
    path: Path, first_day: date | None = None, last_day: date | None = None
) -> pd.DataFrame:
    """The rows of ``path`` dated first_day..last_day (None: unbounded), unchecked:
    ``HISTORICAL_LISTING_COLUMNS``, ``trade_date`` as datetimes, the other values as numbers
    when every one parses, else as text for validation to name the bad ones.

    Raises ``SourceError`` when a column is missing or a date is not like 2013-04-27.
    """
    columns = _columns(path)
    table = _read_typed(path, columns, first_day, last_day)
    if table is None:
        table = _read_text(path, columns, first_day, last_day)
    days = table.column("date").cast(pa.timestamp("us"))
    table = table.set_column(0, "trade_date", days).rename_columns(
        ["trade_date", *(("coin_name" if n == "name" else n) for n in columns[1:])]
    )
    frame = table.to_pandas()
    frame[TAGS] = frame[TAGS].map(tag_text) if TAGS in columns else None
    return frame[HISTORICAL_LISTING_COLUMNS]


def _columns(path: Path) -> list[str]:
    """The columns read: the header's, with ``tags`` if the file has it."""
    with path.open(encoding="utf-8") as file:
        header = [name.strip().strip('"') for name in file.readline().strip().split(",")]
    missing = [name for name in LISTINGS_HEADER if name not in header]
    if missing:
        raise SourceError(f"{path}: missing columns {', '.join(missing)}")
    return [*LISTINGS_HEADER, TAGS] if TAGS in header else LISTINGS_HEADER


def _batches(
    path: Path, columns: list[str], types: dict[str, pa.DataType]
) -> pa_csv.CSVStreamingReader:
    return pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES),
        convert_options=pa_csv.ConvertOptions(
            column_types=types | {TAGS: pa.string()},
            include_columns=columns,
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def _in_range(days: pa.Array, first_day: date | None, last_day: date | None) -> pa.Array:
    keep = pc.is_valid(days)
    if first_day is not None:
        keep = pc.and_(keep, pc.greater_equal(days, pa.scalar(first_day, pa.date32())))
    if last_day is not None:
        keep = pc.and_(keep, pc.less_equal(days, pa.scalar(last_day, pa.date32())))
    return keep


def _read_typed(
    path: Path, columns: list[str], first_day: date | None, last_day: date | None
) -> pa.Table | None:
    """The requested rows parsed as numbers: the fast path. None when a value does not parse
    (or is "nan"), for ``_read_text`` to read and validation to name."""
    kept = []
    try:
        for batch in _batches(path, columns, _TYPED):
            if batch.column("date").null_count:
                return None  # an empty date: the text read names it
            rows = batch.filter(_in_range(batch.column("date"), first_day, last_day))
            if any(pc.any(pc.is_nan(rows.column(name))).as_py() for name in _NUMBERS):
                return None
            kept.append(rows)
    except pa.ArrowInvalid:
        return None
    return pa.Table.from_batches(kept, schema=_schema(columns, _TYPED))


def _read_text(
    path: Path, columns: list[str], first_day: date | None, last_day: date | None
) -> pa.Table:
    """The requested rows as text, dates parsed; a date that does not parse fails, naming it."""
    text = dict.fromkeys(columns, pa.string())
    kept, bad = [], []
    for batch in _batches(path, columns, text):
        raw = batch.column("date")
        days = pc.cast(
            pc.strptime(raw, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32()
        )
        wrong = pc.is_null(days)
        if pc.any(wrong).as_py():
            bad += _coins_and_dates(batch.filter(wrong))
        batch = batch.set_column(0, "date", days)
        kept.append(batch.filter(_in_range(days, first_day, last_day)))
    if bad:
        raise SourceError(f"{path}: dates must look like 2013-04-27, got {bad[:5]}")
    return pa.Table.from_batches(kept, schema=_schema(columns, text | {"date": pa.date32()}))


def _coins_and_dates(rows: pa.RecordBatch) -> list[str]:
    pairs = zip(rows.column("coin_id").to_pylist(), rows.column("date").to_pylist(), strict=True)
    return [f"coin {coin}: {day!r}" for coin, day in pairs]


def _schema(columns: list[str], types: dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema([(name, types.get(name, pa.string())) for name in columns])
