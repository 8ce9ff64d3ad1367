"""A run facing an hour-long ``Retry-After`` ends in seconds, and every process of a run dies
with it: real ``dagster asset materialize`` processes, signals and the local CoinMarketCap."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from coinmarket_assets_tests.dagster_cli import PROJECT, cli_environment
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import SyntheticMarket

RANGE = "2020-01-01...2020-07-18"
# A run process as the executor makes it: a fork server that imported execution.py, and a
# step process forked from it.
RUN_WITH_A_STEP = """
import multiprocessing, time
context = multiprocessing.get_context("forkserver")
context.set_forkserver_preload(["coinmarket_assets.execution"])
step = context.Process(target=time.sleep, args=(600,))
step.start()
print(step.pid, flush=True)
time.sleep(600)
"""


def _survivors(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """Those of ``processes`` still running (zombies aside) after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [p for p in processes if _running(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def test_a_step_process_dies_with_a_run_process_killed_outright():
    run = subprocess.Popen(
        [sys.executable, "-c", RUN_WITH_A_STEP],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert run.stdout is not None
    step = psutil.Process(int(run.stdout.readline()))
    fork_server = step.parent()
    assert fork_server is not None and fork_server.ppid() == run.pid
    try:
        run.kill()  # SIGKILL: nothing of the run process's own code runs
        run.wait()
        assert _survivors([fork_server, step], 10) == []
    finally:
        _kill([fork_server, step])


class _Materialize:
    """``dagster asset materialize`` of historical_trade_data on the live source, its output
    read as it comes; on exit, whatever is left of its process group is killed."""

    def __init__(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "dagster", "asset", "materialize"]
        command += ["-m", "coinmarket_assets.definitions", "--select", "historical_trade_data"]
        self.process = subprocess.Popen(
            [*command, "--partition-range", RANGE],
            env=env,
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.closed = threading.Event()  # every writer of the output pipe has closed it
        threading.Thread(target=self._read, daemon=True).start()

    def __enter__(self) -> "_Materialize":
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace"))
        self.closed.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


def _wait_for_answer(server: FakeCoinMarketCap, run: _Materialize, status: int) -> float:
    """The arrival time of the first request the server answered with ``status``."""
    deadline = time.monotonic() + 120
    while not (answered := [r for r in server.requests if r.status == status]):
        assert run.process.poll() is None, run.output
        assert time.monotonic() < deadline, run.output
        time.sleep(0.05)
    return answered[0].time


@pytest.fixture
def live_env(
    market: SyntheticMarket, database_url: str, tmp_path: Path
) -> Iterator[tuple[FakeCoinMarketCap, dict[str, str]]]:
    with FakeCoinMarketCap(market, max_days=20) as server:
        env = cli_environment(tmp_path, tmp_path / "unused", market.tickers)
        env |= {
            "COINMARKET_SOURCE": "coinmarketcap",
            "COINMARKET_CMC_BASE_URL": server.data_api_url,
            "COINMARKET_CMC_RATE_LIMIT": "100",
            "COINMARKET_CMC_BACKOFF_SECONDS": "0.05",
        }
        yield server, env


@pytest.mark.slow
def test_an_hour_long_retry_after_fails_the_run_at_once_and_a_sigterm_leaves_no_process(
    live_env: tuple[FakeCoinMarketCap, dict[str, str]],
):
    server, env = live_env

    # Asked for an hour, more than the budget's 600 s: the run fails at once, saying why.
    server.fail_next(1, status=429, retry_after=3600, path="id=102&")
    with _Materialize(env) as run:
        refused = _wait_for_answer(server, run, 429)
        assert run.process.wait(timeout=60) != 0
        assert time.monotonic() - refused < 30, "the run sat the pause out"
        assert (
            "BETA (id 102), 2020-01-01..2020-07-18: the server asked to wait 3600 s before "
            "retrying, more than the 600 s left of the retry budget"
        ) in run.output
        assert run.closed.wait(10)

    # Asked for five minutes, within the budget: every worker waits. SIGTERM to the command
    # alone, as `timeout` or a supervisor sends it, ends the run and all of its processes.
    server.reset_requests()
    server.fail_next(1, status=429, retry_after=300, path="historical")
    with _Materialize(env) as run:
        _wait_for_answer(server, run, 429)
        time.sleep(1)
        processes = run.descendants()
        assert len(processes) >= 2  # the fork server and the step process at least
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=30) != 0
        assert _survivors(processes, 10) == []
        assert run.closed.wait(10), "a process of the run still holds its output"
