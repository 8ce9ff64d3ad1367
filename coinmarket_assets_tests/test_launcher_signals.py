"""The launcher leaves nothing running however it is stopped: real processes, real signals.

Each test runs the launcher on a fresh COINMARKET_HOME, so the embedded server is the test's
own. The command, ``sh -c 'sleep 600 & wait'``, leaves a grandchild that ignores SIGINT (as a
shell's background job does), so stopping the command alone is not enough.
"""

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.launcher import (
    COINMARKET,
    PROJECT,
    launcher_env,
    run_launcher,
    server_folder,
    server_process,
    still_running,
    wait_for_descendant,
    wait_until,
)

COMMAND = ["exec", "--", "sh", "-c", "sleep 600 & wait"]
GONE_SECONDS = 15


@pytest.fixture
def home() -> Iterator[Path]:
    with server_folder() as folder:
        yield folder


def _env(home: Path) -> dict[str, str]:
    env = launcher_env(home, COINMARKET_HOME=str(home))
    env.pop(DATABASE_URL_ENV, None)
    return env


def _start(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [COINMARKET, *args],
        env=_env(home),
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _data_dir(home: Path) -> Path:
    return home / "postgres"


def _running_command(home: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """The launcher running COMMAND, and every process it and its server run by then."""
    launcher = _start(home, *COMMAND)
    root = psutil.Process(launcher.pid)
    sleep = wait_for_descendant(root, "sleep")
    # The server daemonizes (its parent is not the launcher): found through its data folder.
    processes = [*root.children(recursive=True), server_process(_data_dir(home))]
    assert sleep in processes
    return launcher, processes


def _assert_all_gone(processes: list[psutil.Process], home: Path) -> None:
    wait_until(lambda: not still_running(processes), GONE_SECONDS, "the processes to end")
    assert not (_data_dir(home) / "postmaster.pid").exists()


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT], ids=lambda sig: sig.name)
def test_a_closed_terminal_or_sigquit_stops_the_command_and_the_embedded_server(
    home: Path, sig: signal.Signals
):
    launcher, processes = _running_command(home)
    launcher.send_signal(sig)  # to the launcher alone, as `kill` does
    assert launcher.wait(timeout=60) != 0
    _assert_all_gone(processes, home)
    assert "Traceback" not in launcher.stderr.read()


def test_a_sigkilled_launcher_leaves_no_command_and_its_server_stops(home: Path):
    launcher, processes = _running_command(home)
    launcher.kill()
    launcher.wait(timeout=10)
    _assert_all_gone(processes, home)
    launcher.stderr.close()


@pytest.mark.parametrize("moment", ["initdb", "pg_ctl"])
def test_a_stop_while_the_embedded_server_starts_leaves_it_neither_running_nor_broken(
    home: Path, moment: str
):
    launcher = _start(home, *COMMAND)
    # initdb makes the data folder; pg_ctl starts the server and waits until it is ready.
    wait_for_descendant(psutil.Process(launcher.pid), moment)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=60) != 0
    launcher.stderr.close()
    wait_until(
        lambda: not (_data_dir(home) / "postmaster.pid").exists(),
        GONE_SECONDS,
        "the server to stop",
    )
    again = run_launcher([COINMARKET, "migrate"], _env(home))
    assert again.returncode == 0, again.stderr
