"""Runs as users start them from a shell: ``dagster asset materialize`` in its own process,
on a Dagster instance stored in the test database."""

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from coinmarket_assets.dagster_flags import DAGSTER_FLAGS

PROJECT = Path(__file__).resolve().parents[1]


def cli_environment(tmp_path: Path, source: Path, tickers: Sequence[str]) -> dict[str, str]:
    """The environment of a run: the project's dagster.yaml in a fresh DAGSTER_HOME, the Dagster
    flags (as docs/deployment.md asks of who runs ``dagster`` directly), the database of
    COINMARKET_DATABASE_URL and a ``csv:`` source."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    shutil.copy(PROJECT / "dagster.yaml", dagster_home / "dagster.yaml")
    return {
        **os.environ,
        **DAGSTER_FLAGS,
        "DAGSTER_HOME": str(dagster_home),
        "COINMARKET_SOURCE": f"csv:{source}",
        "COINMARKET_TICKERS": ",".join(tickers),
    }


def start_materialize(
    env: dict[str, str],
    assets: Sequence[str],
    partition_range: str | None = None,
    log: Path | None = None,
) -> subprocess.Popen:
    """Start one run of ``assets`` (over ``partition_range``, ``FIRST...LAST``, if given), in a
    new session so that the test can signal its whole process group."""
    command = [sys.executable, "-m", "dagster", "asset", "materialize"]
    command += ["-m", "coinmarket_assets.definitions", "--select", ",".join(assets)]
    if partition_range is not None:
        command += ["--partition-range", partition_range]
    if log is None:
        return _start(command, env, subprocess.DEVNULL)
    with open(log, "wb") as output:
        return _start(command, env, output)


def _start(command: list[str], env: dict[str, str], output: object) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        env=env,
        cwd=PROJECT,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def python_in_fresh_process(
    code: str, env: dict[str, str], without_prefix: str
) -> subprocess.CompletedProcess[str]:
    """``code`` run by a new interpreter, which reads settings when it loads the code: with
    ``env``, and without the test process's variables that start with ``without_prefix``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(without_prefix)}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=inherited | env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
