"""Target 2: the compute-and-store cost of a year's backfill against that of one day."""

from datetime import timedelta

from benchmarks.common import (
    EXTRA_DAYS,
    Figure,
    TargetResult,
    Workspace,
    history_days,
    median,
    seconds_text,
)
from benchmarks.pipeline import Pipeline, empty_tables, total
from benchmarks.profiling import pyinstrument_profile

MAX_RATIO = 3.0

METHOD = """\
One database and one persistent Dagster instance (the project's `dagster.yaml`: runs and events
in PostgreSQL, pooled, batched). Each repetition empties the five tables, runs the five
partitioned assets and their asset checks (the README's backfill selection) over the N days
ending 2026-04-14 in one single-run backfill, then over the next day alone (a daily run on top
of that history). A run's cost is the sum of its steps' STEP_START to STEP_SUCCESS times in
Dagster's event log: inputs loaded, computed, stored, and the per-partition materialization and
check events recorded; run start-up and planning are excluded. Runs execute in this process
(`dagster.materialize`, the in-process executor) after one untimed warm-up run. Figure: median
over repetitions of (backfill steps) / (one-day steps)."""

LIMITS = """\
The one-day steps are fixed costs (the step lock and write connections, the csv source reading
each coin's whole file, Dagster's step events), so the ratio grows when fixed costs shrink:
it went from 2.48x to about 2.7x when the one-day run got faster in this session. What a
backfill adds per day is its rows and one materialization event per day and asset (Dagster's
bookkeeping, batched by 1,000); the per-step breakdown shows where."""


def run(ws: Workspace) -> TargetResult:
    result = TargetResult(2, "Backfill cost per day", method=METHOD, limits=LIMITS)
    sizes = ws.sizes
    first, last = history_days(sizes.backfill_days)
    next_day = last + timedelta(days=1)
    files = ws.market(sizes.backfill_coins, first, last + timedelta(days=EXTRA_DAYS))
    pipeline = Pipeline(ws.database("bench_backfill"), files, ws.root / "home_backfill")
    try:
        pipeline.run_days(last, last)  # warm-up: imports, caches, Dagster's first-run setup
        backfills, days = [], []
        for _ in range(sizes.reps):
            empty_tables(pipeline.url)
            backfills.append(pipeline.step_seconds(pipeline.run_days(first, last)))
            days.append(pipeline.step_seconds(pipeline.run_days(next_day, next_day)))
        if ws.profile_dir is not None:
            empty_tables(pipeline.url)
            result.profile = pyinstrument_profile(
                lambda: pipeline.run_days(first, last), ws.profile_dir / "target-2-backfill.txt"
            )
    finally:
        pipeline.close()
    ratios = [total(b) / total(d) for b, d in zip(backfills, days, strict=True)]
    n = sizes.backfill_days
    result.figures = [
        Figure(
            f"{n}-day backfill / 1-day run, step time, {sizes.backfill_coins} coins",
            f"{median(ratios):.2f}x ({seconds_text(median([total(b) for b in backfills]))} vs "
            f"{seconds_text(median([total(d) for d in days]))})",
            f"<= {MAX_RATIO:g}x",
            median(ratios) <= MAX_RATIO,
            median(ratios),
        )
    ]
    result.details = [
        f"days: backfill {first}..{last}, then {next_day}; "
        f"{len(files.market.candles()):,} candles in the source",
        step_table({f"{n} days": backfills, "1 day": days}),
    ]
    return result


def step_table(runs: dict[str, list[dict[str, float]]]) -> str:
    """A Markdown table of each step's median seconds in each kind of run."""
    steps = list(next(iter(runs.values()))[0])
    header = "| step | " + " | ".join(runs) + " |"
    lines = [header, "|---|" + "---|" * len(runs)]
    for step in [*steps, "total"]:
        cells = []
        for samples in runs.values():
            values = [total(s) if step == "total" else s.get(step, 0.0) for s in samples]
            cells.append(seconds_text(median(values)))
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
