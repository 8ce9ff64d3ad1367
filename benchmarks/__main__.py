"""``python -m benchmarks``: run the targets, print the table, write BENCHMARKS.md."""

import argparse
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks import report
from benchmarks.common import (
    FULL,
    PROJECT,
    QUICK,
    REAL_DATA,
    SEED,
    TargetResult,
    Workspace,
    clean_environment,
)

TITLES = {
    1: "writes",
    2: "backfill cost per day",
    3: "flat daily cost",
    4: "scale against the floor",
    5: "fetching",
    6: "start-up",
    7: "whole market",
}
# Start-up first, on a quiet machine; target 4 before 3, which reuses its 8-year history.
RUN_ORDER = (6, 5, 1, 2, 4, 3, 7)
NEEDS_DATABASE = {1, 2, 3, 4, 7}
# Target 7 (13 years x 5,000 coins) takes longer than the rest together: only on request.
DEFAULT_TARGETS = [1, 2, 3, 4, 5, 6]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="much smaller sizes: a smoke run")
    parser.add_argument(
        "--only", type=_targets, default=DEFAULT_TARGETS, help="targets to run, e.g. 1,3"
    )
    parser.add_argument(
        "--whole-market",
        action="store_true",
        help="also run target 7, the whole-market backfill (13 years x 5,000 coins)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the Markdown report (default: BENCHMARKS.md for a full run of "
        "every target, none otherwise)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument(
        "--real-data", type=Path, default=REAL_DATA, help="real csv data to include if present"
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="profile the targets, saving profiles to DIR"
    )
    args = parser.parse_args(argv)
    if args.whole_market and 7 not in args.only:
        args.only = [*args.only, 7]
    return args


def _targets(text: str) -> list[int]:
    numbers = sorted({int(part) for part in text.split(",") if part.strip()})
    unknown = [n for n in numbers if n not in TITLES]
    if unknown or not numbers:
        raise argparse.ArgumentTypeError(f"targets are 1 to 7, not {text!r}")
    return numbers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The pipeline reads its settings at import; the user's shell must not change the figures.
    settings = set(os.environ) - set(clean_environment())
    for name in settings:
        del os.environ[name]
    started = time.perf_counter()
    load_at_start = os.getloadavg()
    sizes = QUICK if args.quick else FULL
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coinmarket-bench-") as folder:
        ws = Workspace(Path(folder), sizes, args.real_data, args.profile)
        if NEEDS_DATABASE & set(args.only):
            ws.start()
        try:
            results = run_targets(ws, args.only)
            postgres = ws.postgres_version() if NEEDS_DATABASE & set(args.only) else "not used"
            real_coins = ws.real_coin_count()
        finally:
            ws.stop()
    results.sort(key=lambda r: r.number)
    wall = time.perf_counter() - started
    print()
    print(report.console_table(results))
    print(f"\n{sum(r.passed for r in results)} of {len(results)} targets hold; {wall / 60:.1f} min")
    output = args.output or (PROJECT / "BENCHMARKS.md" if _full(args) else None)
    if output is not None:
        output.write_text(
            report.markdown(
                results,
                command=_command(argv),
                machine_info=report.machine(postgres, load_at_start),
                sizes=sizes,
                data_note=_data_note(real_coins, args.real_data),
                wall_seconds=wall,
            )
        )
        print(f"wrote {output}")
    if args.json is not None:
        report.write_json(results, args.json)
    return 0 if all(r.passed for r in results) else 1


def run_targets(ws: Workspace, numbers: list[int]) -> list[TargetResult]:
    results = []
    for number in [n for n in RUN_ORDER if n in numbers]:
        print(f"[{time.strftime('%H:%M:%S')}] target {number}: {TITLES[number]} ...", flush=True)
        result = _run_one(number, ws)
        for figure in result.figures:
            verdict = "" if figure.passed is None else ("PASS" if figure.passed else "MISS")
            print(f"    {figure.name}: {figure.measured} (target {figure.target}) {verdict}")
        if result.error:
            print(f"    ERROR: {result.error.splitlines()[-1]}")
        print(f"    ({result.seconds:.0f} s)", flush=True)
        results.append(result)
    return results


def _run_one(number: int, ws: Workspace) -> TargetResult:
    started = time.perf_counter()
    try:
        result = _runner(number)(ws)
    except Exception:  # one target's failure must not hide the others' figures
        result = TargetResult(number, TITLES[number].capitalize(), error=traceback.format_exc())
    result.seconds = time.perf_counter() - started
    return result


def _runner(number: int) -> Callable[[Workspace], TargetResult]:
    # Imported here: each module loads what its target needs (Dagster, the pipeline, the server).
    if number == 1:
        from benchmarks.writes import run
    elif number == 2:
        from benchmarks.backfill import run
    elif number == 3:
        from benchmarks.daily import run
    elif number == 4:
        from benchmarks.scale import run
    elif number == 5:
        from benchmarks.fetching import run
    elif number == 7:
        from benchmarks.whole_market import run
    else:
        from benchmarks.startup import run
    return run


def _full(args: argparse.Namespace) -> bool:
    return not args.quick and set(DEFAULT_TARGETS) <= set(args.only)


def _command(argv: list[str] | None) -> str:
    python = Path(sys.executable)
    if python.is_relative_to(PROJECT):
        python = python.relative_to(PROJECT)
    arguments = sys.argv[1:] if argv is None else argv
    return shlex.join([str(python), "-m", "benchmarks", *arguments])


def _data_note(real_coins: int, real_data: Path) -> str:
    synthetic = (
        f"Deterministic generated markets: seeded geometric random walks (seed {SEED} and the "
        "coin's index), start prices from 1e-5 to 1e4, volatility 1% to 8% a day, written as a "
        "`csv:` source."
    )
    real_data = Path(os.path.relpath(real_data.resolve(), PROJECT))
    if real_coins:
        return (
            f"{synthetic} The first {real_coins} coins of every market are the real price paths "
            f"of `{real_data}` (dates shifted so that each series ends on the market's last day; "
            "gaps, flat runs and zero volumes kept); the rest are generated."
        )
    return f"{synthetic} `{real_data}` is not present: every coin is generated."


if __name__ == "__main__":
    sys.exit(main())
