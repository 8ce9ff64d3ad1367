"""Runs of the real asset graph on a persistent Dagster instance stored in PostgreSQL, as in
production (the project's dagster.yaml), and step times read back from its event log."""

import shutil
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import psycopg
from dagster import (
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    EventLogEntry,
    ExecuteInProcessResult,
    materialize,
)
from psycopg import sql

from benchmarks.common import PARTITIONED_TABLES, PROJECT, MarketFiles, environment
from coinmarket_assets.dagster_flags import DAGSTER_FLAGS
from coinmarket_assets.definitions import defs
from coinmarket_assets.resources import MarketDataSourceResource, PipelineSettingsResource
from coinmarket_assets.schedules import partition_range_tags

# Warnings only: the console would otherwise print every event of thousands of partitions.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def dagster_home(folder: Path) -> Path:
    """A DAGSTER_HOME holding the project's dagster.yaml (Dagster's storage in the database)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "dagster.yaml", folder / "dagster.yaml")
    return folder


def pipeline_settings(url: str, files: MarketFiles, home: Path) -> dict[str, str]:
    """The environment of the pipeline on ``url`` with ``files`` as its source and universe;
    anything it keeps in its home folder goes to ``home``, never to the project folder. With the
    Dagster flags, as the launcher (and docs/deployment.md for ``dagster`` itself) sets them."""
    return {
        **DAGSTER_FLAGS,
        "COINMARKET_DATABASE_URL": url,
        "COINMARKET_SOURCE": files.source,
        "COINMARKET_TICKERS": ",".join(files.tickers),
        "COINMARKET_HOME": str(home),
    }


class Pipeline:
    """The daily job run in this process against one database and its Dagster instance.

    In-process runs skip the multiprocess executor's process start-up, which the step times
    exclude anyway; every step still reads, computes, writes and records its events for real.
    """

    def __init__(self, url: str, files: MarketFiles, folder: Path) -> None:
        self.settings = pipeline_settings(url, files, folder / "coinmarket_home")
        self.url = url
        with environment(**self.settings):
            self.instance = DagsterInstance.from_config(str(dagster_home(folder / "dagster")))

    def run_days(
        self, first_day: date, last_day: date, resources: Mapping[str, object] | None = None
    ) -> str:
        """One run of the five partitioned assets (and their checks) over first_day..last_day,
        the selection the README's backfill command makes; returns its run id."""
        # Fresh resources each run: they cache the source and settings they first read.
        fresh = {
            "source": MarketDataSourceResource(),
            "pipeline_settings": PipelineSettingsResource(),
        }
        with environment(**self.settings):
            result = materialize(
                [*(defs.assets or []), *(defs.asset_checks or [])],
                selection=AssetSelection.assets(*PARTITIONED_TABLES),
                run_config=QUIET,
                instance=self.instance,
                tags=partition_range_tags(first_day.isoformat(), last_day.isoformat()),
                resources={**(defs.resources or {}), **fresh, **(resources or {})},
                raise_on_error=False,
            )
        if not result.success:
            raise RuntimeError(f"run {first_day}..{last_day} failed: {_failures(result)}")
        return result.run_id

    def step_seconds(self, run_id: str) -> dict[str, float]:
        return step_seconds(self.instance, run_id)

    def close(self) -> None:
        self.instance.dispose()


def step_seconds(instance: DagsterInstance, run_id: str) -> dict[str, float]:
    """Each step's time from its STEP_START to its STEP_SUCCESS event, as Dagster recorded them:
    reading inputs, computing, writing and recording the step's events; no run start-up."""
    events = instance.all_logs(
        run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
    )
    starts = {e.step_key: e.timestamp for e in events if _is(e, DagsterEventType.STEP_START)}
    return {
        e.step_key: e.timestamp - starts[e.step_key]
        for e in events
        if _is(e, DagsterEventType.STEP_SUCCESS) and e.step_key in starts
    }


def worker_start_seconds(instance: DagsterInstance, run_id: str) -> dict[str, float]:
    """Each step's process start-up: STEP_WORKER_STARTING (the executor launches a process) to
    STEP_START (the process has loaded the code and its resources)."""
    events = instance.all_logs(
        run_id, of_type={DagsterEventType.STEP_WORKER_STARTING, DagsterEventType.STEP_START}
    )
    launched = {
        e.step_key: e.timestamp for e in events if _is(e, DagsterEventType.STEP_WORKER_STARTING)
    }
    return {
        e.step_key: e.timestamp - launched[e.step_key]
        for e in events
        if _is(e, DagsterEventType.STEP_START) and e.step_key in launched
    }


def run_span(instance: DagsterInstance, run_id: str) -> tuple[float, float]:
    """The RUN_START and RUN_SUCCESS (or failure) timestamps of a run."""
    ends = {DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE}
    events = instance.all_logs(run_id, of_type={DagsterEventType.RUN_START, *ends})
    start = next(e.timestamp for e in events if _is(e, DagsterEventType.RUN_START))
    end = next(e.timestamp for e in events if e.dagster_event_type in ends)
    return start, end


def _is(entry: EventLogEntry, kind: DagsterEventType) -> bool:
    return entry.dagster_event_type == kind


def _failures(result: ExecuteInProcessResult) -> str:
    messages = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        while error is not None:
            messages.append(error.message.strip())
            error = error.cause
    return "\n".join(messages) or "no step failed (run-level error)"


def empty_tables(url: str) -> None:
    """Remove every row of the partitioned tables, so that a backfill starts from nothing."""
    tables = sql.SQL(", ").join(map(sql.Identifier, PARTITIONED_TABLES))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(tables))
        conn.execute("CHECKPOINT")  # the next run does not pay for flushing this one's pages


def total(steps: Mapping[str, float]) -> float:
    """The compute-and-store time of a run: the sum of its steps."""
    return sum(steps.values())
