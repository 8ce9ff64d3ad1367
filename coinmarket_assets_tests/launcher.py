"""Running the ``coinmarket`` launcher as a real process, and watching the processes it starts."""

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parents[1]
COINMARKET = str(BIN / "coinmarket")


def run_launcher(
    args: list[str], env: dict[str, str], timeout: int = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, cwd=PROJECT, check=False
    )


def launcher_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["COINMARKET_HOME"] = str(tmp_path / "home")
    env.update(overrides)
    return env


def alive(process: psutil.Process) -> bool:
    """Whether ``process`` runs; a zombie (dead, not reaped yet by its new parent) does not."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def descendant_named(root: psutil.Process, name: str) -> psutil.Process | None:
    for process in root.children(recursive=True):
        try:
            if process.name() == name:
                return process
        except psutil.NoSuchProcess:
            continue
    return None


def wait_for_descendant(root: psutil.Process, name: str, timeout: float = 60) -> psutil.Process:
    found: list[psutil.Process] = []

    def appeared() -> bool:
        process = descendant_named(root, name)
        if process is not None:
            found.append(process)
        return bool(found)

    wait_until(appeared, timeout, f"a {name} process under pid {root.pid}")
    return found[0]


def still_running(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    return [process for process in processes if alive(process)]


def server_process(data_dir: Path) -> psutil.Process:
    """The postmaster of the embedded server in ``data_dir``."""
    return psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))


@contextmanager
def server_folder() -> Iterator[Path]:
    """A fresh folder for an embedded server's data, outside pytest's base folder.

    pytest makes its base folder private (0700) whenever a test session starts; as root, the
    server runs as another user, and would lose its data folder to any concurrent session.
    """
    with tempfile.TemporaryDirectory(prefix="cm-test-") as folder:
        yield Path(folder)
