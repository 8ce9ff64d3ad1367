"""Target 3: a day's run costs the same whatever the stored history: rows loaded and step time."""

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
from dagster import AssetKey, InputContext, TimeWindowPartitionMapping

from benchmarks.backfill import step_table
from benchmarks.common import (
    EXTRA_DAYS,
    Figure,
    MarketFiles,
    TargetResult,
    Workspace,
    history_days,
    median,
    seconds_text,
    span_text,
)
from benchmarks.pipeline import Pipeline, total
from benchmarks.profiling import pyinstrument_profile
from coinmarket_assets.definitions import defs
from coinmarket_assets.storage.io_manager import PostgresIOManager, TableBatches

MAX_RATIO = 1.2

METHOD = """\
Two databases hold the same coins' history, stored by the pipeline itself: a 1-year backfill,
and the 8-year backfill of target 4 (or, with `--only 3`, the same backfill run in-process).
Each repetition runs the five partitioned assets and their checks for the next new day on both,
alternating which goes first; step time is the sum of the steps' STEP_START to STEP_SUCCESS
times in Dagster's event log. Rows loaded are counted by a subclass of the project's
`PostgresIOManager` that only records `len()` of each frame its `load_input` returns (the frame
the step receives), or for a batched input the rows of all its batches, used as the run's
`postgres_io_manager`; the limit of each input is
(lookback + 1) x coins, the lookback read from the asset's `TimeWindowPartitionMapping`.
Figures: the largest load as a share of its limit over every run, and median 8-year step time /
median 1-year step time."""

LIMITS = """\
Every input loads the partition window its mapping asks for (the statistics only the closes),
so the rows read do not grow with the stored history; what remains of the step time is the
same for both histories: the csv source reading each coin's file, Dagster's events, and index
lookups whose depth grows with the logarithm of the table."""


@dataclass(frozen=True)
class Load:
    step: str
    upstream: str
    loaded: pd.DataFrame | TableBatches

    @property
    def rows(self) -> int:
        """The frame's rows, or all the rows a batched input read (known once the step ran)."""
        if isinstance(self.loaded, TableBatches):
            return self.loaded.rows_read
        return len(self.loaded)


LOADS: list[Load] = []


class CountingIOManager(PostgresIOManager):
    """The project's IO manager, recording what each input load handed its step."""

    def load_input(self, context: InputContext) -> pd.DataFrame | TableBatches:
        loaded = super().load_input(context)
        LOADS.append(Load(context.op_def.name, context.asset_key.path[-1], loaded))
        return loaded


def lookback_days(step: str, upstream: str) -> int:
    """How many days before a partition the step reads from ``upstream``."""
    mapping = defs.resolve_assets_def(AssetKey(step)).get_partition_mapping(AssetKey(upstream))
    if isinstance(mapping, TimeWindowPartitionMapping):
        return -mapping.start_offset
    return 0


def run(ws: Workspace) -> TargetResult:
    result = TargetResult(3, "Flat daily cost", method=METHOD, limits=LIMITS)
    sizes = ws.sizes
    coins = sizes.daily_coins
    long_first, last = history_days(sizes.long_history_days)
    files = ws.market(coins, long_first, last + timedelta(days=EXTRA_DAYS))
    short_label, long_label = (
        span_text(sizes.short_history_days),
        span_text(sizes.long_history_days),
    )
    histories = {
        short_label: _history(ws, files, sizes.short_history_days, "short"),
        long_label: _history(ws, files, sizes.long_history_days, "long"),
    }
    steps: dict[str, list[dict[str, float]]] = {label: [] for label in histories}
    LOADS.clear()
    try:
        for rep in range(sizes.daily_reps):
            day = last + timedelta(days=1 + rep)
            order = list(histories) if rep % 2 == 0 else list(reversed(histories))
            for label in order:
                pipeline = histories[label]
                run_id = pipeline.run_days(day, day, {"postgres_io_manager": CountingIOManager()})
                steps[label].append(pipeline.step_seconds(run_id))
        if ws.profile_dir is not None:
            day = last + timedelta(days=1 + sizes.daily_reps)
            result.profile = pyinstrument_profile(
                lambda: histories[long_label].run_days(day, day),
                ws.profile_dir / "target-3-daily.txt",
            )
    finally:
        for pipeline in histories.values():
            pipeline.close()
    short, long = (median([total(s) for s in steps[k]]) for k in (short_label, long_label))
    worst = max(LOADS, key=lambda load: load.rows / _limit(load, coins))
    share = worst.rows / _limit(worst, coins)
    result.figures = [
        Figure(
            f"rows loaded per upstream table / (lookback + 1) x {coins}, worst input",
            f"{share:.2f} ({worst.step} <- {worst.upstream}: {worst.rows:,} of "
            f"{_limit(worst, coins):,})",
            "<= 1.00",
            share <= 1.0,
            share,
        ),
        Figure(
            f"1-day run step time, {long_label} / {short_label} stored, {coins} coins",
            f"{long / short:.2f}x ({seconds_text(long)} vs {seconds_text(short)})",
            f"<= {MAX_RATIO}x",
            long / short <= MAX_RATIO,
            long / short,
        ),
    ]
    result.details = [_loads_table(coins), step_table(steps)]
    return result


def _history(ws: Workspace, files: MarketFiles, days: int, name: str) -> Pipeline:
    """A database holding ``days`` days of the pipeline's own output, ending 2026-04-14."""
    key = (len(files.tickers), days)
    url = ws.histories.get(key)
    pipeline = Pipeline(url or ws.database(f"bench_history_{name}"), files, ws.root / name)
    if url is None:  # not left by target 4: store it now, untimed
        pipeline.run_days(*history_days(days))
        ws.histories[key] = pipeline.url
    return pipeline


def _limit(load: Load, coins: int) -> int:
    return (lookback_days(load.step, load.upstream) + 1) * coins


def _loads_table(coins: int) -> str:
    lines = ["| step <- upstream | lookback (days) | rows loaded (max) | limit |"]
    lines.append("|---|---|---|---|")
    keys = sorted({(load.step, load.upstream) for load in LOADS})
    for step, upstream in keys:
        rows = max(load.rows for load in LOADS if (load.step, load.upstream) == (step, upstream))
        limit = (lookback_days(step, upstream) + 1) * coins
        lines.append(
            f"| {step} <- {upstream} | {lookback_days(step, upstream)} | {rows:,} | {limit:,} |"
        )
    return "\n".join(lines)
