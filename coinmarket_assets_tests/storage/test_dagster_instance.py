"""Dagster's instance storage on the project's database, as dagster.yaml configures it."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    Output,
    asset,
    materialize,
    mem_io_manager,
)
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster_postgres.event_log import PostgresEventLogStorage

from coinmarket_assets.dagster_flags import DAGSTER_FLAGS
from coinmarket_assets.definitions import defs
from coinmarket_assets.schedules import partition_range_tags
from coinmarket_assets.storage.dagster_instance import (
    CoinmarketEventLogStorage,
    CoinmarketRunStorage,
    CoinmarketScheduleStorage,
)
from coinmarket_assets_tests.hostile_secrets import (
    API_KEY,
    API_KEY_AS_CONFIGURED,
    DB_PASSWORD,
    WEBHOOK_PATH,
    dagster_storage_text,
    leaks,
    with_password,
)
from coinmarket_assets_tests.launcher import COINMARKET, launcher_env, run_launcher

PROJECT = Path(__file__).resolve().parents[2]
PROJECT_DAGSTER_YAML = PROJECT / "dagster.yaml"
PROCESSES = 6
PROBE = "coinmarket_assets_tests.storage.flags_probe"


@pytest.fixture
def instance(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    """The project's instance in the environment the launcher gives its runs."""
    shutil.copy(PROJECT_DAGSTER_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    for name, value in DAGSTER_FLAGS.items():
        monkeypatch.setenv(name, value)
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


SESSION = (
    "SELECT pg_backend_pid(), current_setting('search_path'), "
    "current_setting('synchronous_commit'), current_setting('statement_timeout')"
)


def test_each_storage_reuses_one_session_on_dagsters_schema(instance: DagsterInstance):
    run, events, schedules = (
        instance.run_storage,
        instance.event_log_storage,
        instance.schedule_storage,
    )
    assert isinstance(run, CoinmarketRunStorage)
    assert isinstance(events, CoinmarketEventLogStorage)
    assert isinstance(schedules, CoinmarketScheduleStorage)
    for connect in (run.connect, events.index_connection, schedules.connect):
        sessions = []
        for _ in range(2):
            with connect() as conn:
                sessions.append(tuple(conn.exec_driver_sql(SESSION).one()))
        # The same server process twice: stock dagster-postgres would connect anew each time.
        assert sessions[0] == sessions[1], connect
        assert sessions[0][1:] == ("dagster", "off", "0"), connect


def test_loading_the_storage_sets_no_environment_variable(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    shutil.copy(PROJECT_DAGSTER_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    before = dict(os.environ)
    with DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
    assert dict(os.environ) == before


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
    assert {"runs", "event_logs", "jobs"} <= _tables(database_url, "dagster")


def test_planned_checks_of_a_ranged_run_are_recorded_as_stock_dagster_records_them(
    instance: DagsterInstance,
):
    """The project's faster record of planned checks writes the rows dagster-postgres would."""

    @asset(
        partitions_def=DailyPartitionsDefinition(start_date="2020-01-01"),
        check_specs=[AssetCheckSpec("positive", asset="numbers")],
    )
    def numbers(context: AssetExecutionContext):
        yield Output(len(context.partition_keys))
        yield AssetCheckResult(check_name="positive", passed=True)

    result = materialize(
        [numbers],
        instance=instance,
        tags=partition_range_tags("2020-01-01", "2020-01-05"),
        resources={"io_manager": mem_io_manager},
    )
    assert result.success
    records = instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    ).records
    assert len(records) == 1
    stock_run = "stock-" + result.run_id[6:]
    PostgresEventLogStorage._store_asset_check_evaluation_planned(
        instance.event_log_storage,
        records[0].event_log_entry._replace(run_id=stock_run),
        records[0].storage_id,
    )
    planned = {run: _planned_check_rows(instance, run) for run in (result.run_id, stock_run)}
    assert [row["partition"] for row in planned[stock_run]] == [
        "2020-01-01",
        "2020-01-02",
        "2020-01-03",
        "2020-01-04",
        "2020-01-05",
    ]
    assert planned[result.run_id] == planned[stock_run]


UNCOMPARED_CHECK_COLUMNS = ("id", "run_id", "create_timestamp")


def _planned_check_rows(instance: DagsterInstance, run_id: str) -> list[dict[str, object]]:
    """The run's planned check rows: every column but the row's id, run id and creation time
    (the database's clock), and the event with its run id masked."""
    table = AssetCheckExecutionsTable
    with instance.event_log_storage.index_connection() as conn:
        rows = conn.execute(
            table.select()
            .where(table.c.run_id == run_id, table.c.execution_status == "PLANNED")
            .order_by(table.c.partition)
        ).fetchall()
    return [
        {
            **{k: v for k, v in row._mapping.items() if k not in UNCOMPARED_CHECK_COLUMNS},
            "evaluation_event": row.evaluation_event.replace(run_id, "<run>"),
        }
        for row in rows
    ]


def test_no_stored_event_holds_a_secret_whatever_its_shape(
    instance: DagsterInstance, database_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_DATABASE_URL", with_password(database_url, DB_PASSWORD))
    monkeypatch.setenv("COINMARKET_CMC_API_KEY", API_KEY_AS_CONFIGURED)
    monkeypatch.setenv("COINMARKET_ALERT_WEBHOOK", f"https://hooks.example.com{WEBHOOK_PATH}")

    @asset(check_specs=[AssetCheckSpec("key_is_valid", asset="leaky_success")])
    def leaky_success(context: AssetExecutionContext):
        context.log.info(f"using key {API_KEY!r} and {DB_PASSWORD}")
        yield Output(1, metadata={"request": f"GET ?key={API_KEY}", "hook": WEBHOOK_PATH})
        yield AssetCheckResult(passed=False, description=f"{DB_PASSWORD} was refused")

    @asset
    def leaky_failure() -> None:
        raise RuntimeError(f"Invalid header value: {API_KEY_AS_CONFIGURED!r}; db {DB_PASSWORD}")

    result = materialize(
        [leaky_success, leaky_failure],
        instance=instance,
        resources={"io_manager": mem_io_manager},
        raise_on_error=False,
    )
    assert not result.success
    stored = dagster_storage_text(database_url)
    assert "Invalid header value: '***'; db ***" in stored  # the failure is stored, masked
    assert "using key" in stored
    assert leaks(stored) == []


def test_the_external_postgres_variant_names_every_dagster_flag_with_its_value():
    text = (PROJECT / "deploy" / "dagster.external-postgres.yaml").read_text()
    flags = [f"{name}={value}" for name, value in DAGSTER_FLAGS.items()]
    assert [flag for flag in flags if flag not in text] == []


@pytest.mark.slow
def test_a_run_started_through_the_launcher_has_the_dagster_flags_a_user_value_winning(
    database_url: str, tmp_path: Path
):
    env = {k: v for k, v in launcher_env(tmp_path).items() if k not in DAGSTER_FLAGS}
    env["DAGSTER_EVENT_BATCH_SIZE"] = "7"  # the user's own value
    command = [COINMARKET, "exec", "--", "dagster", "asset", "materialize", "-m", PROBE]
    command += ["--select", "dagster_flags_seen", "--partition-range", "2020-01-01...2020-01-03"]
    result = run_launcher(command, env)
    assert result.returncode == 0, result.stderr[-3000:]

    with DagsterInstance.from_config(str(tmp_path / "home" / "dagster_home")) as instance:
        [run] = instance.get_runs()
        seen = instance.fetch_materializations(AssetKey("dagster_flags_seen"), limit=10).records
        planned = instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
    # Read in the step's own process, one for each of the three days.
    assert [
        {name: value.value for name, value in record.asset_materialization.metadata.items()}
        for record in seen
    ] == [DAGSTER_FLAGS | {"DAGSTER_EVENT_BATCH_SIZE": "7"}] * 3
    assert len(planned) == 1  # planned as one range, in the CLI's process
