"""The launcher's stop signals and the children it starts.

A closed terminal (SIGHUP), ``kill`` (SIGTERM), Ctrl-C (SIGINT) and Ctrl-\\ (SIGQUIT) all mean
"stop": each is turned into ``Stopped``, an exception, so that every cleanup on the way out runs
(the embedded server's stop above all), or passed to the running command as SIGINT. Children
get SIGINT too when the launcher dies without a word (SIGKILL), through PR_SET_PDEATHSIG.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import FrameType

import psutil

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# The signal a command gets when the launcher stops, or dies: dagster dev shuts down cleanly on it.
CHILD_STOP_SIGNAL = signal.SIGINT
PDEATHSIG_SUPPORTED = sys.platform == "linux"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_received: list[int] = []


class Stopped(BaseException):
    """A stop signal arrived; a BaseException, like KeyboardInterrupt, so that only cleanups
    (``finally``, context managers) see it on its way to ``main``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_received() -> int | None:
    """The first stop signal received, if any."""
    return _received[0] if _received else None


def record_stop(signum: int) -> bool:
    """Note a stop signal; True when it is the first."""
    _received.append(signum)
    return len(_received) == 1


def _raise_the_first(signum: int, _frame: FrameType | None) -> None:
    # Later signals are ignored: they would interrupt the cleanups the first one started.
    if record_stop(signum):
        raise Stopped(signum)


@contextlib.contextmanager
def _stop_signals_handled_by(
    handler: Callable[[int, FrameType | None], None],
) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """While the block runs, the first stop signal raises ``Stopped``; later ones are ignored."""
    _received.clear()
    with _stop_signals_handled_by(_raise_the_first):
        yield


@contextlib.contextmanager
def stop_signals_call(handler: Callable[[int], None]) -> Iterator[None]:
    """While the block runs, every stop signal is recorded and calls ``handler(signum)``."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        record_stop(signum)
        handler(signum)

    with _stop_signals_handled_by(on_signal):
        yield


@contextlib.contextmanager
def stops_deferred() -> Iterator[None]:
    """While the block runs, stop signals are only recorded; the first one is raised after it.

    For steps that must not be cut short, such as initdb: a half-made data folder would not
    start again.
    """
    first = stop_received() is None
    with stop_signals_call(lambda _signum: None):
        yield
    signum = stop_received()
    if first and signum is not None:
        raise Stopped(signum)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGINT when this process dies, even by SIGKILL
    (Linux only; None elsewhere)."""
    if not PDEATHSIG_SUPPORTED:
        return None
    # Loaded here, before the fork: the child between fork and exec should only make calls.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(CHILD_STOP_SIGNAL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: no signal will come
            os._exit(128 + CHILD_STOP_SIGNAL)

    return preexec


def alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (dead, not yet reaped by its parent) does not."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it: 128 + N for a child killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def start_child(arguments: list[str], **popen: object) -> subprocess.Popen:
    """Start a child that dies with this process, with the stop signals held back until
    ``Popen`` returns: a stop then always finds the child known to its caller (to be killed),
    never started but unseen, left to write after the caller cleaned up."""
    preexec = die_with_parent()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def in_child() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # the child takes signals again
        if preexec is not None:
            preexec()

    try:
        return subprocess.Popen(arguments, preexec_fn=in_child, **popen)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
