"""``coinmarket dev`` (webserver and daemon) in a subprocess, driven through its GraphQL API as
the UI drives it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

T = TypeVar("T")
BIN = Path(sys.executable).parent
START_SECONDS = 180
DAEMONS = ("BACKFILL", "SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR")
FINISHED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
FINISHED_RUN = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}"""
RUNS = """
query ($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId status jobName startTime endTime tags { key value } } }
  }
}"""
DAEMON_HEALTH = """
{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], T | None], seconds: float, what: str) -> T:
    """The first truthy value of ``condition``, polled until ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.5)


class DagsterService:
    """The product as users start it: ``coinmarket dev`` with the given environment."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env)
        self._log = log
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        with open(self._log, "wb") as output:
            self._process = subprocess.Popen(
                [str(BIN / "coinmarket"), "dev", "--port", str(self.port)],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._ready, START_SECONDS, "the webserver and daemons")
        return self

    def __exit__(self, *_: object) -> None:
        assert self._process is not None
        os.killpg(self._process.pid, signal.SIGINT)
        try:
            self._process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            raise

    def output(self) -> str:
        return self._log.read_text(errors="replace")

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"coinmarket dev exited:\n{self.output()[-4000:]}")
        try:
            statuses = self.graphql(DAEMON_HEALTH)["instance"]["daemonHealth"]
        except OSError:
            return False
        healthy = {s["daemonType"] for s in statuses["allDaemonStatuses"] if s["healthy"]}
        return set(DAEMONS) <= healthy

    def launch_backfill(self, assets: Sequence[str], first_day: str, last_day: str) -> str:
        """Backfill ``assets`` over the days, as the UI's "Materialize" dialog does."""
        selection = [
            {
                "assetKey": {"path": [asset]},
                "partitions": {"range": {"start": first_day, "end": last_day}},
            }
            for asset in assets
        ]
        result = self.graphql(LAUNCH_BACKFILL, {"params": {"partitionsByAssets": selection}})
        launched = result["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def wait_for_backfill(self, backfill_id: str, seconds: float = 600) -> str:
        def finished() -> str | None:
            status = self.graphql(BACKFILL_STATUS, {"id": backfill_id})
            value = status["partitionBackfillOrError"].get("status")
            return value if value in FINISHED_BACKFILL else None

        return wait_for(finished, seconds, f"backfill {backfill_id}")

    def runs(self, tags: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        filter_ = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        return self.graphql(RUNS, {"filter": filter_})["runsOrError"]["results"]

    def wait_for_runs(self, tags: Mapping[str, str], count: int, seconds: float = 600) -> list:
        """At least ``count`` runs with ``tags``, once every one of them has finished."""

        def finished() -> list | None:
            runs = self.runs(tags)
            done = len(runs) >= count and all(run["status"] in FINISHED_RUN for run in runs)
            return runs if done else None

        return wait_for(finished, seconds, f"{count} runs tagged {dict(tags)}")

    def wait_for_first_run(self, tags: Mapping[str, str], seconds: float = 600) -> dict[str, Any]:
        """The earliest run with ``tags`` once it has finished, whether or not later ones (a
        schedule that ticks every minute starts more) are still running."""

        def first_finished() -> dict[str, Any] | None:
            runs = sorted(self.runs(tags), key=lambda run: run["startTime"] or float("inf"))
            return runs[0] if runs and runs[0]["status"] in FINISHED_RUN else None

        return wait_for(first_finished, seconds, f"the first run tagged {dict(tags)}")


def run_tags(run: Mapping[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}
