"""The benchmark harness (``make bench``) works: a quick run of target 1 produces every figure
and the report. Timings are not asserted; they belong to ``make bench``, not to CI."""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import span_text
from benchmarks.fetching import busiest_window

PROJECT = Path(__file__).resolve().parents[1]


def test_a_quick_run_of_the_writes_target_produces_its_figures_and_report(tmp_path: Path):
    report, figures = tmp_path / "BENCHMARKS.md", tmp_path / "figures.json"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--only", "1"]
    command += ["--output", str(report), "--json", str(figures)]
    done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=180)
    # Exit code 1 means a target was missed, which a smoke run does not judge.
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]

    (result,) = json.loads(figures.read_text())
    assert result["number"] == 1 and not result["error"]
    assert len(result["figures"]) == 2
    assert all(figure["value"] > 0 for figure in result["figures"])
    assert result["figures"][0]["passed"] in (True, False)
    text = report.read_text()
    assert "## Machine" in text and "| PostgreSQL |" in text
    assert "IO manager / bare COPY throughput, 20,000 rows" in text
    assert "IO manager / bare COPY throughput" in done.stdout  # the console table


def test_the_busiest_window_counts_arrivals_in_half_open_windows():
    assert busiest_window([0.0, 0.1, 9.9, 10.0, 10.05, 25.0], 10.0) == 4  # 0.1 .. 10.05
    assert busiest_window([0.0, 10.0, 20.0], 10.0) == 1
    assert busiest_window([], 10.0) == 0


def test_spans_read_in_years_when_whole():
    assert [span_text(d) for d in (365, 2922, 40)] == ["1 year", "8 years", "40 days"]


def test_the_whole_market_target_runs_only_when_asked_for():
    from benchmarks.__main__ import parse_args

    assert 7 not in parse_args([]).only
    assert parse_args(["--only", "7"]).only == [7]
    assert parse_args(["--whole-market"]).only == [1, 2, 3, 4, 5, 6, 7]
