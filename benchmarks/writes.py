"""Target 1: storing historical_trade_data rows through the IO manager, against a bare COPY."""

from collections.abc import Callable
from datetime import date, timedelta

import pandas as pd
from dagster import AssetKey, PartitionKeyRange, build_init_resource_context, build_output_context

from benchmarks import floor
from benchmarks.common import (
    LAST_HISTORY_DAY,
    Figure,
    TargetResult,
    Workspace,
    days_for_rows,
    median,
    seconds_text,
    timed,
)
from benchmarks.profiling import pyinstrument_profile
from coinmarket_assets.assets.market_data import historical_trade_data
from coinmarket_assets.sources import open_source, resolve_universe
from coinmarket_assets.storage.io_manager import CoinRows, PostgresIOManager

TABLE = "historical_trade_data"
MIN_RATIO = 0.6

METHOD = """\
The rows are exactly what the `historical_trade_data` asset yields: the csv source's checked
candles of the generated market (the newest N rows), with `source` and `fetched_at`. The IO
manager's `handle_output` stores them as a single-run backfill does (a partition key range
covering their days, `CoinRows` with the universe's coin ids): serialisation, the staging table and
merge, the day-window scope and the commit are all timed. The floor is one `COPY ... FROM STDIN
(FORMAT csv)` of the same rows, serialised beforehand (PostgreSQL's own CSV of the stored rows),
into `bench_floor.historical_trade_data`, created `LIKE historical_trade_data INCLUDING ALL`
(same primary key and index), committed. Both tables are emptied and checkpointed before each
timing; IO manager and COPY alternate which goes first. Figure: median over repetitions of
COPY seconds / IO manager seconds (equal rows, so the throughput ratio). The rewrite figure
(the same rows written again over stored days) is context, not a target."""

LIMITS = """\
The IO manager's first write is the bare COPY plus the day-window delete, an indexed `EXISTS`
probe (nothing stored: no staging, no revision count) and serialisation. Arrow serialises the
rows in chunks of 50,000 while psycopg's queued writer thread sends the previous chunk, so
serialising overlaps the server's parsing and indexing; what is left is the chunks' extra
round trips. Before (2026-11-28): one 176 MB CSV buffer made before the COPY, 0.63x. The
rewrite of stored days (context figure) merges through a staging table to count revised
candles, so it writes every row twice."""


def run(ws: Workspace) -> TargetResult:
    result = TargetResult(1, "Writes: IO manager vs bare COPY", method=METHOD, limits=LIMITS)
    url = ws.database("bench_writes")
    frame, coin_ids = asset_rows(ws, ws.sizes.write_rows, ws.sizes.write_coins)
    manager = _io_manager(url)
    write = _writer(manager, frame, coin_ids)
    write()  # warm-up: imports and caches; its stored rows become the floor's payload
    payload = floor.dump_csv(url, TABLE)
    floor.create_floor_table(url, TABLE)
    first_writes, copies = _first_writes(url, write, payload, ws.sizes.reps)
    rewrites = _rewrites(url, write, ws.sizes.reps)
    ratios = [c / w for c, w in zip(copies, first_writes, strict=True)]
    rewrite_ratio = median(copies) / median(rewrites)
    rows = len(frame)
    result.figures = [
        Figure(
            f"IO manager / bare COPY throughput, {rows:,} rows",
            f"{median(ratios):.2f}x ({rows / median(first_writes):,.0f} vs "
            f"{rows / median(copies):,.0f} rows/s)",
            f">= {MIN_RATIO}x",
            median(ratios) >= MIN_RATIO,
            median(ratios),
        ),
        Figure(
            "rewrite of the same stored days (context)",
            f"{rewrite_ratio:.2f}x ({seconds_text(median(rewrites))})",
            "-",
            None,
            rewrite_ratio,
        ),
    ]
    result.details = [
        f"rows: {rows:,} ({len(coin_ids)} coins, {frame['trade_date'].min():%Y-%m-%d}.."
        f"{frame['trade_date'].max():%Y-%m-%d}); CSV payload {len(payload) / 1e6:.0f} MB",
        f"IO manager, first write: {_list(first_writes)}",
        f"bare COPY: {_list(copies)}",
        f"IO manager, rewrite of stored days: {_list(rewrites)}",
    ]
    if ws.profile_dir is not None:
        floor.truncate(url, "public", TABLE)
        result.profile = pyinstrument_profile(write, ws.profile_dir / "target-1-writes.txt")
    floor.drop_floor(url)
    return result


def asset_rows(ws: Workspace, rows: int, coins: int) -> tuple[pd.DataFrame, list[int]]:
    """The newest ``rows`` checked candles of a market, as the asset passes them on."""
    days = days_for_rows(rows, coins)
    files = ws.market(coins, LAST_HISTORY_DAY - timedelta(days=days - 1), LAST_HISTORY_DAY)
    source = open_source(files.source)
    universe = resolve_universe(source.listing(), files.tickers)
    checked = source.checked_candles(universe, files.first_day, files.last_day).candles
    if len(checked) < rows:
        raise ValueError(f"the market holds {len(checked)} rows, fewer than {rows}")
    newest = checked.sort_values(["trade_date", "coin_id"]).tail(rows)
    candles = newest.sort_values(["coin_id", "trade_date"], ignore_index=True)
    # As the asset does: the source's name and one fetch time for the run.
    candles = candles.assign(source=source.name, fetched_at=pd.Timestamp.now(tz="UTC"))
    return candles, [coin.coin_id for coin in universe]


def _io_manager(url: str) -> PostgresIOManager:
    manager = PostgresIOManager(url=url)
    manager.setup_for_execution(build_init_resource_context())
    return manager


def _writer(
    manager: PostgresIOManager, frame: pd.DataFrame, coin_ids: list[int]
) -> Callable[[], None]:
    """A call that stores ``frame`` as a single-run backfill of its days stores it."""
    first: date = frame["trade_date"].min().date()
    last: date = frame["trade_date"].max().date()
    rows = CoinRows(frame, coin_ids)

    def write() -> None:
        # An output context serves one handle_output call only.
        context = build_output_context(
            asset_key=AssetKey(TABLE),
            op_def=historical_trade_data.op,
            asset_partitions_def=historical_trade_data.partitions_def,
            asset_partition_key_range=PartitionKeyRange(first.isoformat(), last.isoformat()),
        )
        manager.handle_output(context, rows)

    return write


def _first_writes(
    url: str, write: Callable[[], None], payload: bytes, reps: int
) -> tuple[list[float], list[float]]:
    """Paired timings of the IO manager and the bare COPY into empty tables."""
    writes, copies = [], []
    for rep in range(reps):
        for which in ("copy", "io") if rep % 2 == 0 else ("io", "copy"):
            if which == "copy":
                floor.truncate(url, floor.FLOOR_SCHEMA, TABLE)
                copies.append(floor.bare_copy(url, TABLE, payload))
            else:
                floor.truncate(url, "public", TABLE)
                writes.append(timed(write))
    return writes, copies


def _rewrites(url: str, write: Callable[[], None], reps: int) -> list[float]:
    """The same rows stored again over themselves (the revision-counting merge)."""
    times = []
    for _ in range(reps):
        floor.checkpoint(url)
        times.append(timed(write))
    return times


def _list(values: list[float]) -> str:
    return ", ".join(seconds_text(v) for v in values)
