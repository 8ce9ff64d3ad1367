"""Target 7: the whole market, point in time: a 13-year backfill of 5,000 coins in one CLI run
(time against the floor, peak memory), the peak's growth from 500 to 4,000 coins, and the
daily run that follows the backfill (step times, rows read)."""

import shlex
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from dagster import AssetSelection, InputContext, materialize

from benchmarks.common import (
    LAST_HISTORY_DAY,
    PARTITIONED_TABLES,
    QUICK,
    Figure,
    TargetResult,
    Workspace,
    clean_environment,
    environment,
    seconds_text,
    span_text,
)
from benchmarks.pipeline import QUIET, dagster_home, step_seconds
from benchmarks.scale import (
    MAX_MEMORY_BYTES,
    MAX_RATIO,
    floor_seconds,
    materialize_command,
    run_measured,
)
from coinmarket_assets.dagster_flags import DAGSTER_FLAGS
from coinmarket_assets.storage.io_manager import PostgresIOManager, TableBatches
from coinmarket_testkit.synthetic import (
    whole_market,
    whole_market_global_metrics,
    write_global_metrics_csv,
)

MAX_GROWTH = 1.4
DAILY_EXTRA_DAYS = 3  # the source publishes these days after the backfill, for the daily run
SEED = 20_260_414

METHOD = """\
A generated whole market (`coinmarket_testkit.synthetic.whole_market`: births spread over the
years, a quarter of the coins dying, every coin listed each day it has a candle, ranked by market
cap) written as a `csv:` source with `listings.csv` and `global_metrics.csv`, run with
`COINMARKET_TICKERS=top:N`, N the number of coins (every listed coin is a member, so the run
stores and ranks the whole market as the listings had it each day; the point-in-time mode is the
one this scale is for), and
`COINMARKET_LISTING_DEPTH=N`. The backfill is one `dagster asset materialize` of the daily
tables (historical_listings included) over the whole span, a CLI subprocess as in target 4, into
an empty migrated database: wall time of the command, and peak memory as the largest sum of RSS
over its process tree sampled every 50 ms. The floor: each daily table's stored rows, dumped to
CSV, COPYed into an empty twin with the same keys and indexes, one transaction per table, times
summed. Growth: the same command over two years of a market whose coins all live the whole time
(every coin a member every day), with 500 and 4,000 coins, peak over peak. The daily run: the
next day on top of the backfill, in-process, with an IO manager that records the rows each input
read (a batched input's rows, summed over its batches); the limit of an input is
(lookback + 1) x N."""


@dataclass(frozen=True)
class WholeSizes:
    coins: int
    days: int
    small_coins: int
    large_coins: int
    growth_days: int


FULL_SIZES = WholeSizes(coins=5000, days=4748, small_coins=500, large_coins=4000, growth_days=730)
QUICK_SIZES = WholeSizes(coins=60, days=400, small_coins=20, large_coins=80, growth_days=60)


def run(ws: Workspace) -> TargetResult:
    sizes = QUICK_SIZES if ws.sizes == QUICK else FULL_SIZES
    result = TargetResult(7, "Whole market", method=METHOD)
    backfill = _backfill(ws, "whole", sizes.coins, sizes.days, dying_share=0.25, born=0.2)
    small = _backfill(ws, "small", sizes.small_coins, sizes.growth_days, dying_share=0, born=1)
    large = _backfill(ws, "large", sizes.large_coins, sizes.growth_days, dying_share=0, born=1)
    failed = [b for b in (backfill, small, large) if b.error]
    if failed:
        result.error = "\n\n".join(b.error for b in failed)
        return result
    rows, copy_seconds = floor_seconds(backfill.url)
    floor = sum(copy_seconds.values())
    ratio = backfill.wall / floor
    growth = large.peak / small.peak
    daily = _daily_run(ws, backfill)
    worst = max(daily.reads, key=lambda r: r.rows / r.limit)
    span = f"{span_text(sizes.days)} x {sizes.coins:,} coins"
    result.figures = [
        Figure(
            f"backfill / bare COPY of its tables, {span}",
            f"{ratio:.1f}x ({seconds_text(backfill.wall)} vs {seconds_text(floor)})",
            f"<= {MAX_RATIO:g}x",
            ratio <= MAX_RATIO,
            ratio,
        ),
        Figure(
            f"peak memory of the run's process tree, {span}",
            f"{backfill.peak / 1e6:,.0f} MB",
            f"< {MAX_MEMORY_BYTES / 1e6:,.0f} MB",
            backfill.peak < MAX_MEMORY_BYTES,
            backfill.peak / 1e6,
        ),
        Figure(
            f"peak memory, {sizes.large_coins:,} / {sizes.small_coins:,} coins "
            f"({sizes.growth_days} days, every coin a member)",
            f"{growth:.2f}x ({large.peak / 1e6:,.0f} MB vs {small.peak / 1e6:,.0f} MB)",
            f"<= {MAX_GROWTH:g}x",
            growth <= MAX_GROWTH,
            growth,
        ),
        Figure(
            f"daily run after the backfill: rows read / (lookback + 1) x {sizes.coins:,}, "
            "worst input",
            f"{worst.rows / worst.limit:.2f} ({worst.step} <- {worst.upstream}: "
            f"{worst.rows:,} of {worst.limit:,})",
            "<= 1.00",
            worst.rows <= worst.limit,
            worst.rows / worst.limit,
        ),
    ]
    result.commands = [backfill.command, small.command, large.command]
    result.details = [_floor_table(rows, copy_seconds), _daily_table(daily)]
    return result


@dataclass
class Backfill:
    url: str
    home: Path
    source: Path
    coins: int
    first_day: date
    last_day: date
    wall: float = 0.0
    peak: int = 0
    command: str = ""
    error: str = ""

    def env(self) -> dict[str, str]:
        return {
            **DAGSTER_FLAGS,
            "COINMARKET_DATABASE_URL": self.url,
            "COINMARKET_SOURCE": f"csv:{self.source}",
            "COINMARKET_TICKERS": f"top:{self.coins}",
            "COINMARKET_LISTING_DEPTH": str(self.coins),
            # 13 years ending 2026-04-14 begin before the default first partition.
            "COINMARKET_START_DATE": self.first_day.isoformat(),
            "COINMARKET_HOME": str(self.home / "coinmarket_home"),
        }


def _backfill(
    ws: Workspace, name: str, coins: int, days: int, *, dying_share: float, born: float
) -> Backfill:
    """Generate the market, then one CLI backfill of its days, measured."""
    last = LAST_HISTORY_DAY
    first = last - timedelta(days=days - 1)
    source = ws.root / f"whole_{name}"
    market = whole_market(
        coins, first, days + DAILY_EXTRA_DAYS, SEED, dying_share, born_at_start=born
    )
    market.write_csv(source, listing_depth=coins)
    write_global_metrics_csv(source, whole_market_global_metrics(market))
    del market
    backfill = Backfill(
        ws.database(f"bench_whole_{name}"),
        ws.root / f"home_whole_{name}",
        source,
        coins,
        first,
        last,
    )
    home = dagster_home(backfill.home / "dagster")
    env = clean_environment(DAGSTER_HOME=str(home), **backfill.env())
    command = materialize_command(f"{first}...{last}")
    log = ws.root / f"whole-{name}.log"
    measured = run_measured(command, env, log)
    backfill.command = f"DAGSTER_HOME={home} {shlex.join(command)}"
    if measured.exit_code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        backfill.error = f"{name} backfill failed (exit {measured.exit_code}):\n{tail}"
    backfill.wall, backfill.peak = measured.wall, measured.peak_rss
    return backfill


@dataclass(frozen=True)
class Read:
    step: str
    upstream: str
    rows: int
    limit: int


@dataclass(frozen=True)
class DailyRun:
    steps: dict[str, float]
    reads: list[Read]


class _CountingIOManager(PostgresIOManager):
    """The project's IO manager, keeping what each input load handed its step."""

    def load_input(self, context: InputContext) -> object:
        loaded = super().load_input(context)
        LOADED.append((context.op_def.name, context.asset_key.path[-1], loaded))
        return loaded


LOADED: list[tuple[str, str, object]] = []


def _daily_run(ws: Workspace, backfill: Backfill) -> DailyRun:
    """The next day on top of the backfill, in this process, counting the rows read."""
    from benchmarks.daily import lookback_days
    from coinmarket_assets.definitions import defs
    from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
    from coinmarket_assets.schedules import partition_range_tags

    day = (backfill.last_day + timedelta(days=1)).isoformat()
    LOADED.clear()
    home = dagster_home(backfill.home / "daily")
    with environment(**backfill.env(), DAGSTER_HOME=str(home)):
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(home)) as instance:
            outcome = materialize(
                [*(defs.assets or []), *(defs.asset_checks or [])],
                selection=AssetSelection.assets(*PARTITIONED_TABLES),
                run_config=QUIET,
                instance=instance,
                tags=partition_range_tags(day, day),
                resources={
                    **(defs.resources or {}),
                    "source": MarketDataSourceResource(),
                    "pipeline_settings": PipelineSettingsResource(),
                    "postgres_io_manager": _CountingIOManager(),
                },
                raise_on_error=True,
            )
            steps = step_seconds(instance, outcome.run_id)
    reads = []
    for step, upstream, loaded in LOADED:
        rows = loaded.rows_read if isinstance(loaded, TableBatches) else len(loaded)
        limit = (lookback_days(step, upstream) + 1) * backfill.coins
        reads.append(Read(step, upstream, rows, limit))
    return DailyRun(steps, reads)


def _floor_table(rows: dict[str, int], seconds: dict[str, float]) -> str:
    lines = ["| table | rows | bare COPY |", "|---|---|---|"]
    lines += [f"| {t} | {rows[t]:,} | {seconds_text(seconds[t])} |" for t in rows]
    lines.append(f"| total | {sum(rows.values()):,} | {seconds_text(sum(seconds.values()))} |")
    return "\n".join(lines)


def _daily_table(daily: DailyRun) -> str:
    lines = [
        "Daily run after the backfill (one new day, in-process):",
        "",
        "| step | seconds |",
        "|---|---|",
    ]
    lines += [f"| {step} | {seconds:.2f} |" for step, seconds in sorted(daily.steps.items())]
    lines += [
        f"| total | {sum(daily.steps.values()):.2f} |",
        "",
        "| step <- upstream | rows read | limit (lookback + 1) x coins |",
        "|---|---|---|",
    ]
    lines += [f"| {r.step} <- {r.upstream} | {r.rows:,} | {r.limit:,} |" for r in daily.reads]
    return "\n".join(lines)
