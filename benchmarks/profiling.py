"""Profiles for ``--profile DIR``: pyinstrument around one extra in-process repetition, py-spy
around a subprocess tree, each saved to DIR and summarised in BENCHMARKS.md."""

import shutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import PROJECT

SUMMARY_LINES = 45


def pyinstrument_profile(action: Callable[[], object], output: Path) -> str:
    """Run ``action`` under pyinstrument; save the full tree, return its top lines."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005)
    profiler.start()
    try:
        action()
    finally:
        profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    output.write_text(text)
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:SUMMARY_LINES])


def py_spy_command(command: list[str], output: Path) -> list[str]:
    """``command`` wrapped in ``py-spy record`` over its whole process tree (raw stacks)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    options = ["record", "--subprocesses", "--rate", "50", "-f", "raw", "-o", str(output)]
    return [py_spy, *options, "--", *command]


# Dagster's own bookkeeping, shown next to the project's functions.
BOOKKEEPING = (
    "RunDomain._log_asset_planned_events",
    "EventMethods.handle_new_event",
    "DagsterLogHandler.emit",
)


def summarise_stacks(raw: Path, top: int = 15) -> str:
    """Shares of py-spy's samples (all processes; collapsed ``frame;frame;... count`` lines):
    the project's functions and Dagster's event bookkeeping inclusive, any function on top."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [_function(f) for f in stack.split(";") if not f.startswith("process ")]
        if not frames or not count_text.isdigit():
            continue  # a process's command line wrapped onto its own line
        samples += int(count_text)
        for frame in set(frames):
            inclusive[frame] += int(count_text)
        own[frames[-1]] += int(count_text)
    if not samples:
        return "no samples"

    def share(counter: Counter[str], names: list[str]) -> list[str]:
        return [f"{counter[name] / samples:7.1%}  {name}" for name in names]

    project = [n for n, _ in inclusive.most_common() if "(coinmarket_assets/" in n][:top]
    dagster = [n for n in inclusive if n.split(" (")[0] in BOOKKEEPING]
    on_top = [name for name, _ in own.most_common(top)]
    lines = [f"{samples} samples over every process of the run (50 per second of CPU)", ""]
    lines += ["project functions, inclusive:", *share(inclusive, project), ""]
    lines += ["Dagster event bookkeeping, inclusive:", *share(inclusive, dagster), ""]
    lines += ["on top of the stack (self):", *share(own, on_top)]
    return "\n".join(lines)


def _function(frame: str) -> str:
    """``name (path/to/file.py)``: no line number, no site-packages prefix."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{PROJECT}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name
