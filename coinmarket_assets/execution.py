"""How a run executes its steps: in processes forked from one that has loaded everything.

Every process of a run dies with it. Dagster turns SIGTERM or SIGINT to the run's process
(``dagster asset materialize``, a launched run worker) into an interrupt of each step's main
thread, which the steps honour. A run process killed outright (SIGKILL, the OOM killer) passes
nothing on, and neither the fork server nor a signal on its death (PR_SET_PDEATHSIG) would end
the steps: each step holds the fork server's "client alive" pipe open (so that it could start
processes itself), which keeps the fork server running. So each step process watches the run
process itself, through the pipe multiprocessing keeps between them, and is killed when it goes.
"""

import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing.process import BaseProcess
from multiprocessing.util import register_after_fork

from dagster import multiprocess_executor

# Modules a step needs, imported once per run by the fork server instead of once per step
# process (about a second each: Dagster's Postgres storage, pandas, numpy, pyarrow, psycopg and
# the project's own).
STEP_MODULES = [
    "coinmarket_assets.definitions",
    "coinmarket_assets.storage.dagster_instance",
    "coinmarket_assets.storage.table_io",
    "coinmarket_assets.storage.migrations",
    "coinmarket_assets.compute.indicators",
    "coinmarket_assets.compute.rankings",
    "coinmarket_assets.sources.validation",
    "coinmarket_assets.sources.csv_source",
    "coinmarket_assets.sources.coinmarketcap.source",
]

step_executor = multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": STEP_MODULES}}},
    name="forked_step_executor",
)


def _die_with_the_run(_: object) -> None:
    """In a step process, just started: be killed as soon as the run process is gone."""
    if multiprocessing.get_start_method(allow_none=True) != "forkserver":
        return
    run = multiprocessing.parent_process()  # the process that started it, not the fork server
    if run is not None:
        threading.Thread(target=_kill_after, args=(run,), name="die-with-run", daemon=True).start()


def _kill_after(run: BaseProcess) -> None:
    run.join()  # returns when the run process has closed its end of the step's start-up pipe
    os.kill(os.getpid(), signal.SIGKILL)


# multiprocessing runs this in each process the fork server (which imports this module with
# STEP_MODULES) starts, before the process's target.
register_after_fork(sys.modules[__name__], _die_with_the_run)
