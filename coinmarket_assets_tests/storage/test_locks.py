"""Session locks: one holder at a time, waiters told who holds them, released by a dying holder."""

import logging
import signal
import subprocess
import sys
import threading
import time

import pytest

from coinmarket_assets.storage.locks import is_locked, session_lock

HOLD_FOREVER = """
import sys, time
from coinmarket_assets.storage.locks import session_lock
with session_lock(sys.argv[1], "shared thing", "a process that will be killed"):
    print("held", flush=True)
    time.sleep(600)
"""


def _wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_second_holder_waits_until_the_first_releases(database_url: str):
    acquired = threading.Event()

    def second() -> None:
        with session_lock(database_url, "shared thing", "second"):
            acquired.set()

    with session_lock(database_url, "shared thing", "first"):
        waiter = threading.Thread(target=second)
        waiter.start()
        assert not acquired.wait(1.0), "the lock was taken twice"
    assert acquired.wait(10), "the waiter never got the lock"
    waiter.join()
    assert not is_locked(database_url, "shared thing")


def test_locks_with_other_names_do_not_wait_for_each_other(database_url: str):
    with (
        session_lock(database_url, "one thing", "first"),
        session_lock(database_url, "another thing", "second"),
    ):
        assert is_locked(database_url, "one thing") and is_locked(database_url, "another thing")


def test_a_waiter_is_told_who_holds_the_lock(database_url: str, caplog: pytest.LogCaptureFixture):
    log = logging.getLogger("test.locks")
    done = threading.Event()

    def second() -> None:
        with session_lock(database_url, "shared thing", "second", log):
            done.set()

    with caplog.at_level(logging.INFO), session_lock(database_url, "shared thing", "run abc"):
        waiter = threading.Thread(target=second)
        waiter.start()
        _wait_until(lambda: "Waiting for lock" in caplog.text)
    waiter.join()
    assert done.is_set()
    assert "coinmarket shared thing: run abc" in caplog.text


def test_a_killed_holder_releases_the_lock(database_url: str):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOREVER, database_url], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert is_locked(database_url, "shared thing")
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        started = time.monotonic()
        with session_lock(database_url, "shared thing", "next"):
            assert time.monotonic() - started < 10
    finally:
        holder.kill()
