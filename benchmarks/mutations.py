"""Deliberate mutations of the definitions' numbers, each of which some test must catch.

``python -m benchmarks.mutations [--first] [NAME ...]`` copies the project (without .venv and
.git) to a temporary folder once per mutation, changes one number there, runs the pinning tests
in the copy and prints every test that failed (``--first``: only the first). The checkout itself
is never modified, so it is safe to run while others work in it. Exit status 1 if a mutation
survives (no test fails) or its pattern no longer matches the code."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PINNING = "coinmarket_assets_tests/assets/test_pinned_definitions.py"
FRESHNESS = (
    "coinmarket_assets_tests/test_checks.py"
    "::test_freshness_is_measured_from_the_close_of_the_newest_day"
)
SCHEDULE = f"{PINNING}::test_the_daily_run_fetches_again_the_3_days_before_the_newest"
COPIED = ["coinmarket_assets", "coinmarket_assets_tests", "coinmarket_testkit", "sql"]
COPIED_FILES = ["pyproject.toml", "dagster.yaml", "workspace.yaml"]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # in the package
    pattern: str  # a regular expression that must match exactly once
    replacement: str
    tests: tuple[str, ...] = (PINNING,)


MUTATIONS = [
    Mutation(
        "rsi lookback 300->299",
        "coinmarket_assets/settings.py",
        r"RSI_LOOKBACK_DAYS = 300\b",
        "RSI_LOOKBACK_DAYS = 299",
    ),
    Mutation(
        "rsi lookback 300->301",
        "coinmarket_assets/settings.py",
        r"RSI_LOOKBACK_DAYS = 300\b",
        "RSI_LOOKBACK_DAYS = 301",
    ),
    Mutation(
        "rsi period 14->13",
        "coinmarket_assets/settings.py",
        r'("COINMARKET_RSI_PERIOD",\s*)14,',
        r"\g<1>13,",
    ),
    Mutation(
        "std window 14->13",
        "coinmarket_assets/settings.py",
        r'("COINMARKET_STD_WINDOW",\s*)14,',
        r"\g<1>13,",
    ),
    Mutation(
        "std ddof 0->1",
        "coinmarket_assets/compute/indicators.py",
        r"\.std\(axis=1\)",
        ".std(axis=1, ddof=1)",
    ),
    Mutation(
        "smoothing Wilder->EMA (full windows)",
        "coinmarket_assets/compute/indicators.py",
        r"decay = \(period - 1\) / period",
        "decay = (period - 1) / (period + 1)",
    ),
    Mutation(
        "return days 5->4",
        "coinmarket_assets/settings.py",
        r'("COINMARKET_RETURN_DAYS",\s*)5,',
        r"\g<1>4,",
    ),
    Mutation(
        "rank size 5->4",
        "coinmarket_assets/settings.py",
        r'("COINMARKET_RANK_SIZE",\s*)5,',
        r"\g<1>4,",
    ),
    Mutation(
        "tie-break ticker descending",
        "coinmarket_assets/compute/rankings.py",
        r"ascending=\[True, not highest_first, True, True\]",
        "ascending=[True, not highest_first, False, True]",
    ),
    Mutation(
        "tie-break coin id descending",
        "coinmarket_assets/compute/rankings.py",
        r"ascending=\[True, not highest_first, True, True\]",
        "ascending=[True, not highest_first, True, False]",
    ),
    Mutation(
        "tie-break ticker case-insensitive",
        "coinmarket_assets/compute/rankings.py",
        r'kind="stable",',
        'kind="stable", key=lambda c: c.str.lower() if c.name == "ticker" else c,',
    ),
    Mutation(
        "statistics lookback mapping one day short",
        "coinmarket_assets/assets/statistics.py",
        r"start_offset=-days,",
        "start_offset=-days + 1,",
    ),
    Mutation(
        "chart days 90->89",
        "coinmarket_assets/settings.py",
        r"CHART_DAYS = 90\b",
        "CHART_DAYS = 89",
    ),
    Mutation(
        "chart dependency mapping one day short",
        "coinmarket_assets/assets/charts.py",
        r"start_offset=-\(CHART_DAYS - 1\)",
        "start_offset=-(CHART_DAYS - 2)",
    ),
    Mutation(
        "chart reads one day short",
        "coinmarket_assets/assets/charts.py",
        r"first, end = day - timedelta\(days=CHART_DAYS - 1\)",
        "first, end = day - timedelta(days=CHART_DAYS - 2)",
    ),
    Mutation(
        "run's last day one short (day boundary)",
        "coinmarket_assets/sources/validation.py",
        r"\(days <= pd\.Timestamp\(last_day\)\)",
        "(days < pd.Timestamp(last_day))",
    ),
    Mutation(
        "top n 100->99",
        "coinmarket_assets/settings.py",
        r'("COINMARKET_TOP_N",\s*)100,',
        r"\g<1>99,",
    ),
    Mutation(
        "resync days 3->2",
        "coinmarket_assets/settings.py",
        r'("COINMARKET_RESYNC_DAYS",\s*)3,',
        r"\g<1>2,",
        (SCHEDULE,),
    ),
    Mutation(
        "freshness limit 36h->35h",
        "coinmarket_assets/checks.py",
        r"FRESHNESS_LIMIT = timedelta\(hours=36\)",
        "FRESHNESS_LIMIT = timedelta(hours=35)",
        (FRESHNESS,),
    ),
]


def _copy_project(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPIED:
        shutil.copytree(PROJECT / name, target / name, ignore=ignore)
    for name in COPIED_FILES:
        shutil.copy2(PROJECT / name, target / name)


def _mutate(root: Path, mutation: Mutation) -> str | None:
    """Apply the mutation in the copy; a message if its pattern does not match exactly once."""
    path = root / mutation.path
    text = path.read_text()
    mutated, count = re.subn(mutation.pattern, mutation.replacement, text)
    if count != 1:
        return f"pattern matched {count} times in {mutation.path}"
    path.write_text(mutated)
    return None


def _pytest(root: Path, tests: tuple[str, ...], first: bool) -> tuple[int, list[str], float]:
    """Exit code, failed test ids and seconds of pytest run in the copy (which then comes first
    on sys.path, ahead of the editable install of the checkout)."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE"]
    command += ["-x", *tests] if first else tests
    env = {**os.environ, "PYTHONPATH": str(root)}  # subprocesses import the copy too
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    failed = [
        line.split()[1] for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))
    ]
    if done.returncode not in (0, 1):
        failed.append(f"(pytest exit {done.returncode}: {done.stdout[-500:]}{done.stderr[-500:]})")
    return done.returncode, failed, time.perf_counter() - started


def _run(mutation: Mutation | None, first: bool) -> tuple[bool, str]:
    """Whether the result is the expected one (the original passes, a mutation fails)."""
    with tempfile.TemporaryDirectory(prefix="cm-mutation-") as folder:
        root = Path(folder)
        _copy_project(root)
        problem = _mutate(root, mutation) if mutation else None
        if problem:
            return False, problem
        code, failed, seconds = _pytest(root, mutation.tests if mutation else (PINNING,), first)
    if mutation is None:
        outcome = "passes" if code == 0 else "FAILS: " + ", ".join(failed)
        return code == 0, f"{outcome} ({seconds:.0f} s)"
    if code == 0:
        return False, f"SURVIVED: no test failed ({seconds:.0f} s)"
    names = ", ".join(name.split("::", 1)[-1] for name in failed)
    return True, f"caught by {names} ({seconds:.0f} s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="substrings of mutation names (default: all)")
    parser.add_argument(
        "--first",
        action="store_true",
        help="stop at the first failing test (faster; cheap "
        "tests of the definitions come first in the file, the materializing ones after)",
    )
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.names or any(n in m.name for n in args.names)]
    ok, line = _run(None, args.first)
    print(f"{'unmutated':45} {line}", flush=True)
    if not ok:
        return 1
    survived = 0
    for mutation in chosen:
        ok, line = _run(mutation, args.first)
        survived += not ok
        print(f"{mutation.name:45} {line}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
