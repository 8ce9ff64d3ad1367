"""Dagster's instance storage on the project's database, as dagster.yaml configures it."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, materialize
from sqlalchemy.pool import QueuePool

from coinmarket_assets.definitions import defs

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"
PROCESSES = 6


@pytest.fixture
def instance(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    shutil.copy(PROJECT_DAGSTER_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    # Recorded as unset, so the values the storage exports are undone after the test.
    for name in ("DAGSTER_EVENT_BATCH_SIZE", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"):
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    with DagsterInstance.get() as instance:
        yield instance


def _tables(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        ).fetchall()
    return {name for (name,) in rows}


def test_runs_and_events_live_in_the_dagster_schema(
    instance: DagsterInstance, database_url: str, csv_source: Path
):
    result = materialize(
        [a for a in defs.assets if a.key.path == ["currency_status"]],
        resources=defs.resources,
        instance=instance,
    )
    assert result.success
    assert {"runs", "event_logs", "jobs"} <= _tables(database_url, "dagster")
    assert not {"runs", "event_logs"} & _tables(database_url, "public")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM dagster.runs").fetchone() == (1,)


def test_storage_reuses_pooled_connections_and_batches_events(instance: DagsterInstance):
    storage = instance.get_ref().storage_data
    assert storage.class_name == "CoinmarketDagsterStorage"
    for part in (instance.run_storage, instance.event_log_storage, instance.schedule_storage):
        # A private attribute of dagster-postgres: this fails if an upgrade renames it.
        assert isinstance(part._engine.pool, QueuePool), type(part).__name__
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "1000"


def test_processes_starting_together_on_a_new_database_all_get_the_storage(
    database_url: str, tmp_path: Path
):
    shutil.copy(PROJECT_DAGSTER_YAML, tmp_path / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    # Imports first, then every process starts its storage at the same moment.
    code = (
        "import sys, time; from dagster import DagsterInstance; "
        "import coinmarket_assets.storage.dagster_instance; "
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time())); "
        "DagsterInstance.get().get_runs(limit=1)"
    )
    start_at = str(time.time() + 5)
    starts = [
        subprocess.Popen([sys.executable, "-c", code, start_at], env=env, stderr=subprocess.PIPE)
        for _ in range(PROCESSES)
    ]
    errors = [start.communicate(timeout=120)[1].decode() for start in starts]
    assert [start.returncode for start in starts] == [0] * PROCESSES, errors
    assert {"runs", "event_logs"} <= _tables(database_url, "dagster")
