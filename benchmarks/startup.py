"""Target 6: importing the code location against a bare ``import dagster``."""

import re
import subprocess
import sys
from collections import defaultdict

from benchmarks.common import PROJECT, Figure, TargetResult, Workspace, clean_environment, median

MAX_RATIO = 1.5
BASELINE = "dagster"
LOCATION = "coinmarket_assets.definitions"
# The import alone, inside a fresh interpreter: its own start-up is not part of either figure.
SNIPPET = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"

METHOD = """\
Each import runs in a fresh `python -c` subprocess (the project's virtualenv, the project folder
as working directory, no COINMARKET_* settings) that times the `import` statement alone with
`time.perf_counter`; the two kinds alternate, after one untimed warm-up each (bytecode caches
written). Figure: median `import coinmarket_assets.definitions` / median `import dagster`.
The extra imports are listed from one `python -X importtime` run: the top-level packages that
`coinmarket_assets.definitions` imports and `dagster` does not, by cumulative time."""

LIMITS = """\
Loading the code location imports Dagster plus the project's light modules: asset functions
import pandas, numpy, pyarrow, psycopg and matplotlib (through `compute/` and `storage/`) in
their bodies, the IO manager imports `table_io` on its first read or write, and asset
signatures name `Frame` (Dagster resolves them at load; `pandas.DataFrame` would import
pandas). `coinmarket_assets_tests/test_definitions.py` fails if any of them comes back. The
remaining extra is tenacity and the definitions themselves. Before (2026-11-28): 2.10x."""


def import_command(module: str) -> list[str]:
    return [sys.executable, "-c", SNIPPET.format(module=module)]


def import_seconds(module: str) -> float:
    done = subprocess.run(
        import_command(module),
        cwd=PROJECT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def run(ws: Workspace) -> TargetResult:
    result = TargetResult(6, "Start-up", method=METHOD, limits=LIMITS)
    samples: dict[str, list[float]] = {BASELINE: [], LOCATION: []}
    for module in samples:
        import_seconds(module)  # warm-up
    for rep in range(ws.sizes.import_reps):
        order = list(samples) if rep % 2 == 0 else list(reversed(samples))
        for module in order:
            samples[module].append(import_seconds(module))
    baseline, location = median(samples[BASELINE]), median(samples[LOCATION])
    result.figures = [
        Figure(
            "import coinmarket_assets.definitions / import dagster",
            f"{location / baseline:.2f}x ({location:.2f} s vs {baseline:.2f} s)",
            f"<= {MAX_RATIO}x",
            location / baseline <= MAX_RATIO,
            location / baseline,
        )
    ]
    result.commands = [" ".join(import_command(m)) for m in samples]
    result.details = [
        f"`import {m}`: " + ", ".join(f"{s:.2f} s" for s in values) for m, values in samples.items()
    ]
    result.details.append(extra_imports_table())
    return result


def import_self_times(module: str) -> dict[str, float]:
    """Seconds of ``-X importtime`` self time per top-level package imported by ``module``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=PROJECT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    packages: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)", line)
        if match:
            microseconds, name = match.groups()
            packages[name.split(".")[0]] += int(microseconds) / 1e6
    return packages


def extra_imports_table(top: int = 12) -> str:
    """Packages that the code location imports and a bare ``import dagster`` does not."""
    baseline = import_self_times(BASELINE)
    location = import_self_times(LOCATION)
    extra = {name: seconds for name, seconds in location.items() if name not in baseline}
    ranked = sorted(extra.items(), key=lambda item: -item[1])[:top]
    lines = [
        f"Imported beyond dagster: {sum(extra.values()):.2f} s of import self time "
        "(`-X importtime`, one run; import time only, module-level work included).",
        "",
        "| package | self seconds |",
        "|---|---|",
    ]
    return "\n".join(lines + [f"| {name} | {seconds:.3f} |" for name, seconds in ranked])
