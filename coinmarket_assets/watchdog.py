"""The launcher's watchdog: it cleans up after a launcher that died without doing so (SIGKILL).

The launcher starts it in a session of its own and tells it, through a pipe, what to clean up:
the process group of each command it runs and the embedded server it holds. The pipe closes when
the launcher exits, however it exits. The watchdog then stops what is still registered: it gives
each command's first process a while to exit (it got SIGINT through PR_SET_PDEATHSIG), kills
the rest of its group, and drops the launcher from the embedded server's holders, which stops
the server unless another process holds it. A launcher that cleaned up after itself has
unregistered its commands, and the watchdog has little or nothing left to do.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from coinmarket_assets.processes import CHILD_STOP_SIGNAL, PDEATHSIG_SUPPORTED, alive

# How long a command's first process (dagster dev) may take to shut down before its group is
# killed. The launcher itself waits longer; a dead launcher's command is not worth the wait.
GRACE_SECONDS = 10
POLL_SECONDS = 0.05


class Watchdog:
    """The launcher's side: starts the watchdog on first use and registers what it must stop."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None

    def guard_group(self, pgid: int) -> None:
        self._send("group", pgid)

    def forget_group(self, pgid: int) -> None:
        self._send("forget-group", pgid)

    def guard_server(self, data_dir: Path) -> None:
        """Register the embedded server before it starts, so that a launcher killed while it
        starts does not leave it running either."""
        self._send("server", str(data_dir))

    def forget_server(self, data_dir: Path) -> None:
        self._send("forget-server", str(data_dir))

    def close(self) -> None:
        """Close the pipe (the watchdog then cleans up what is still registered), and reap it."""
        if self._process is None:
            return
        process, self._process = self._process, None
        with contextlib.suppress(OSError):
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=GRACE_SECONDS + 60)

    def _send(self, action: str, target: object) -> None:
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                text=True,
                # Out of the terminal's reach: a closed terminal or Ctrl-C must not stop it.
                start_new_session=True,
            )
        # A watchdog that died must not stop the launcher.
        with contextlib.suppress(OSError):
            self._process.stdin.write(json.dumps([action, target]) + "\n")
            self._process.stdin.flush()


def _say(message: str) -> None:
    with contextlib.suppress(OSError):  # the terminal may be gone
        print(f"coinmarket watchdog: {message}", file=sys.stderr, flush=True)


def stop_group(pgid: int, grace_seconds: float = GRACE_SECONDS) -> None:
    """Let the group's first process exit within ``grace_seconds``, then kill the whole group."""
    if not PDEATHSIG_SUPPORTED and alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pgid, CHILD_STOP_SIGNAL)
    deadline = time.monotonic() + grace_seconds
    while alive(pgid) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _read_registrations() -> tuple[list[int], list[Path]]:
    """Read the pipe until the launcher closes it; return what is still registered."""
    groups: list[int] = []
    servers: list[Path] = []
    for line in sys.stdin:
        action, target = json.loads(line)
        if action == "group":
            groups.append(int(target))
        elif action == "forget-group" and int(target) in groups:
            groups.remove(int(target))
        elif action == "server":
            servers.append(Path(target))
        elif action == "forget-server" and Path(target) in servers:
            servers.remove(Path(target))
    return groups, servers


def main(argv: list[str]) -> int:
    launcher = int(argv[0])
    # The launcher handles the terminal's signals; this process outlives it to clean up.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    groups, servers = _read_registrations()
    for pgid in groups:
        stop_group(pgid)
        _say(f"the launcher (pid {launcher}) is gone: stopped its command (pid {pgid})")
    for data_dir in servers:
        from coinmarket_assets.storage.embedded import release_holder

        if release_holder(data_dir, launcher):
            _say(f"the launcher (pid {launcher}) is gone: stopped the embedded PostgreSQL")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
