"""``DIR/listings.csv``: the market's listing of each day, read with Arrow.

Header ``date,coin_id,ticker,name,slug,rank,price,market_cap,volume_24h,circulating_supply,
total_supply,max_supply`` (the last five may be empty), and optionally ``tags`` (the coin's
CoinMarketCap tags that day, ';'-separated); other columns are ignored. Rows may come in any
order. The file is read in blocks and only the requested days are kept, so memory follows the
days asked for, not the file.
"""

import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from functools import partial
from pathlib import Path
from typing import TypeVar

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
_BLOCK_BYTES = 4 << 20  # the reader buffers many blocks: its memory follows this


def read_listing_rows(
    path: Path, first_day: date | None = None, last_day: date | None = None
) -> pd.DataFrame:
    """The rows of ``path`` dated first_day..last_day (None: unbounded), unchecked:
    ``HISTORICAL_LISTING_COLUMNS``, ``trade_date`` as datetimes, the other values as numbers
    when every one parses, else as text for validation to name the bad ones.

    Raises ``SourceError`` when a column is missing or a date is not like 2013-04-27.
    """
    columns = _columns(path)
    kept = _read(path, columns, first_day, last_day, _Collected)
    return _frame(kept.table(), columns)


def read_listing_batches(
    path: Path, first_day: date, last_day: date, days: int
) -> Iterator[pd.DataFrame]:
    """``read_listing_rows`` of first_day..last_day, ``days`` whole days per frame, in date
    order, from one pass over the file: rows may come in any order, so each batch's rows are
    spilled to a temporary Arrow file until the pass ends; memory holds a block and a batch."""
    columns = _columns(path)
    with tempfile.TemporaryDirectory(prefix="coinmarket-listings-") as folder:
        spilled = _read(
            path, columns, first_day, last_day, partial(_Spilled, Path(folder), first_day, days)
        )
        for table in spilled.tables():
            yield _frame(table, columns)


def read_listing_lives(path: Path) -> pd.DataFrame:
    """Each listed coin's row of its last listed day (unchecked, as ``read_listing_rows``) with
    ``first_day``, its first listed day: one pass over the file, holding a block and a row per
    coin, not the file."""
    lives = _read(path, _columns(path), None, None, partial(_Lives, _columns(path)))
    return lives.rows()


def _frame(table: pa.Table, columns: list[str]) -> pd.DataFrame:
    days = table.column("date").cast(pa.timestamp("us"))
    table = table.set_column(0, "trade_date", days).rename_columns(
        ["trade_date", *(("coin_name" if n == "name" else n) for n in columns[1:])]
    )
    frame = table.to_pandas()
    frame[TAGS] = frame[TAGS].map(tag_text) if TAGS in columns else None
    return frame[HISTORICAL_LISTING_COLUMNS]


class _Collected:
    """The rows read, held in memory."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema, self.batches = schema, []

    def add(self, rows: pa.RecordBatch) -> None:
        self.batches.append(rows)

    def close(self) -> None:
        self.batches = []

    def table(self) -> pa.Table:
        return pa.Table.from_batches(self.batches, schema=self.schema)


class _Spilled:
    """The rows read, in one temporary Arrow file per batch of ``days`` days from first_day."""

    def __init__(self, folder: Path, first_day: date, days: int, schema: pa.Schema) -> None:
        self.folder, self.days, self.schema = folder, days, schema
        self.first = pa.scalar(first_day, pa.date32())
        self.writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}

    def add(self, rows: pa.RecordBatch) -> None:
        offsets = pc.subtract(rows.column("date").cast(pa.int32()), self.first.cast(pa.int32()))
        batch_of = pc.divide(offsets, self.days)
        for number in pc.unique(batch_of).to_pylist():
            self._writer(number).write_batch(rows.filter(pc.equal(batch_of, number)))

    def _writer(self, number: int) -> pa.ipc.RecordBatchFileWriter:
        if number not in self.writers:
            path = self.folder / f"{number}.arrow"
            self.writers[number] = pa.ipc.new_file(str(path), self.schema)
        return self.writers[number]

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def tables(self) -> Iterator[pa.Table]:
        self.close()
        for number in sorted(self.writers):
            with pa.memory_map(str(self.folder / f"{number}.arrow")) as source:
                yield pa.ipc.open_file(source).read_all()


class _Lives:
    """Per coin, the row of its last listed day so far and its first listed day."""

    def __init__(self, columns: list[str], schema: pa.Schema) -> None:
        self.columns = columns
        self.close()

    def add(self, rows: pa.RecordBatch) -> None:
        frame = _frame(pa.Table.from_batches([rows]), self.columns)
        firsts = frame.groupby("coin_id")["trade_date"].min()
        self.first = pd.concat([self.first, firsts]).groupby(level=0).min()
        both = pd.concat([self.latest, frame]) if len(self.latest) else frame
        both = both.sort_values(["coin_id", "trade_date"], kind="stable")
        self.latest = both.drop_duplicates("coin_id", keep="last")

    def close(self) -> None:
        self.latest = pd.DataFrame(columns=HISTORICAL_LISTING_COLUMNS)
        self.first = pd.Series(dtype="datetime64[us]")

    def rows(self) -> pd.DataFrame:
        first_days = self.first.reindex(self.latest["coin_id"]).to_numpy()
        return self.latest.assign(first_day=first_days).reset_index(drop=True)


_Sink = TypeVar("_Sink", "_Collected", "_Spilled", "_Lives")


def _read(
    path: Path,
    columns: list[str],
    first_day: date | None,
    last_day: date | None,
    sink: Callable[[pa.Schema], _Sink],
) -> _Sink:
    """The rows dated first_day..last_day into a new ``sink``: parsed as numbers if every value
    parses (the fast path), else read again as text for validation to name the bad ones."""
    typed = sink(_schema(columns, _TYPED))
    if _read_typed(path, columns, first_day, last_day, typed):
        return typed
    typed.close()
    text = sink(_schema(columns, dict.fromkeys(columns, pa.string()) | {"date": pa.date32()}))
    _read_text(path, columns, first_day, last_day, text)
    return text


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
        # Threaded reading runs further ahead: 805 MB of RSS against 344 MB for a 2.3 GB file
        # read in batches of 50 days (16 MB and 4 MB blocks), and no faster on two cores.
        read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES, use_threads=False),
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
    path: Path,
    columns: list[str],
    first_day: date | None,
    last_day: date | None,
    sink: _Collected | _Spilled | _Lives,
) -> bool:
    """Feed ``sink`` the requested rows parsed as numbers; False when a value does not parse
    (or is "nan"), for ``_read_text`` to read and validation to name."""
    try:
        for batch in _batches(path, columns, _TYPED):
            if batch.column("date").null_count:
                return False  # an empty date: the text read names it
            rows = batch.filter(_in_range(batch.column("date"), first_day, last_day))
            if any(pc.any(pc.is_nan(rows.column(name))).as_py() for name in _NUMBERS):
                return False
            sink.add(rows)
    except pa.ArrowInvalid:
        return False
    return True


def _read_text(
    path: Path,
    columns: list[str],
    first_day: date | None,
    last_day: date | None,
    sink: _Collected | _Spilled | _Lives,
) -> None:
    """Feed ``sink`` the requested rows as text, dates parsed; a date that does not parse
    fails, naming it."""
    text = dict.fromkeys(columns, pa.string())
    bad = []
    for batch in _batches(path, columns, text):
        raw = batch.column("date")
        days = pc.cast(
            pc.strptime(raw, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32()
        )
        wrong = pc.is_null(days)
        if pc.any(wrong).as_py():
            bad += _coins_and_dates(batch.filter(wrong))
        batch = batch.set_column(0, "date", days)
        sink.add(batch.filter(_in_range(days, first_day, last_day)))
    if bad:
        raise SourceError(f"{path}: dates must look like 2013-04-27, got {bad[:5]}")


def _coins_and_dates(rows: pa.RecordBatch) -> list[str]:
    pairs = zip(rows.column("coin_id").to_pylist(), rows.column("date").to_pylist(), strict=True)
    return [f"coin {coin}: {day!r}" for coin, day in pairs]


def _schema(columns: list[str], types: dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema([(name, types.get(name, pa.string())) for name in columns])
