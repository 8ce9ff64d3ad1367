"""The dagster.yaml variants load as Dagster loads them, on the test database: storage, queue,
run retries and each run launcher, its class resolved and its configuration validated. And
COINMARKET_BACKFILL_CHUNK_DAYS turns every partitioned asset's backfill into chunked runs."""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml
from dagster import DagsterInstance
from dagster._config import validate_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_docker import DockerRunLauncher
from dagster_k8s import K8sRunLauncher

from coinmarket_assets import settings_docs
from coinmarket_assets.dagster_flags import DAGSTER_FLAGS
from coinmarket_assets.settings import declared, secret_variables, variable
from coinmarket_assets.storage.dagster_instance import (
    CoinmarketEventLogStorage,
    CoinmarketRunStorage,
    CoinmarketScheduleStorage,
)
from coinmarket_assets_tests.dagster_cli import python_in_fresh_process
from coinmarket_assets_tests.dagster_runs import read_table

PROJECT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "local": PROJECT / "dagster.yaml",
    "external-postgres": PROJECT / "deploy" / "dagster.external-postgres.yaml",
    "docker": PROJECT / "deploy" / "dagster.docker.yaml",
    "k8s": PROJECT / "deploy" / "dagster.k8s.yaml",
}


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kubernetes' in-cluster configuration (a service account token) does not exist here; the
    launcher's own configuration and construction are what the tests check."""
    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda: None)


@pytest.fixture
def load_variant(database_url: str, tmp_path: Path, no_cluster: None) -> Iterator:
    opened: list[DagsterInstance] = []

    def load(name: str) -> DagsterInstance:
        home = tmp_path / name
        home.mkdir()
        shutil.copy(VARIANTS[name], home / "dagster.yaml")
        instance = DagsterInstance.from_config(str(home))
        opened.append(instance)
        return instance

    yield load
    for instance in opened:
        instance.dispose()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_stores_in_the_project_database_queues_and_retries_crashed_runs(
    load_variant, name: str
):
    instance = load_variant(name)
    assert isinstance(instance.run_storage, CoinmarketRunStorage)
    assert isinstance(instance.event_log_storage, CoinmarketEventLogStorage)
    assert isinstance(instance.schedule_storage, CoinmarketScheduleStorage)
    assert instance.get_runs_count() == 0  # Dagster's tables, created in the test database
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    # What the daemon's queue reads (the coordinator's own default says 10).
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    assert instance.run_monitoring_enabled
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 1
    assert not instance.run_retries_retry_on_asset_or_op_failure
    instance.run_launcher  # noqa: B018 - resolves and instantiates the configured launcher


def _passed_variables(launcher: DockerRunLauncher | K8sRunLauncher) -> list[str]:
    return list(launcher.env_vars)


def test_the_docker_variant_starts_runs_in_containers_with_the_settings(load_variant):
    launcher = load_variant("docker").run_launcher
    assert isinstance(launcher, DockerRunLauncher)
    assert launcher.image.startswith("registry.example.com/")
    assert launcher.networks == ["coinmarket"]
    passed = _passed_variables(launcher)
    assert "COINMARKET_DATABASE_URL" in passed
    assert {"COINMARKET_SOURCE", "COINMARKET_TICKERS", "COINMARKET_RETURN_DAYS"} <= set(passed)
    # Passed through by name, so that no value (no password) is written into the file.
    assert all("=" not in name for name in passed if name.startswith("COINMARKET_"))


def test_the_k8s_variant_starts_runs_as_jobs_with_credentials_from_a_secret(load_variant):
    launcher = load_variant("k8s").run_launcher
    assert isinstance(launcher, K8sRunLauncher)
    assert launcher.job_image.startswith("registry.example.com/")
    assert launcher.job_namespace == "coinmarket"
    assert launcher.instance_config_map == "coinmarket-dagster-instance"
    assert launcher._env_secrets == ["coinmarket-secrets"]
    passed = launcher._env_vars
    assert "COINMARKET_DATABASE_URL" not in passed  # from the Secret
    assert all("=" not in name for name in passed if name.startswith("COINMARKET_"))


SETTINGS = {variable(field) for _, _, field in declared()}
SECRETS = set(secret_variables())
FLAGS = {f"{name}={value}" for name, value in DAGSTER_FLAGS.items()}


def test_the_model_declares_the_secrets_this_test_knows():
    assert {"COINMARKET_DATABASE_URL", "COINMARKET_CMC_API_KEY", "COINMARKET_ALERT_WEBHOOK"} == (
        SECRETS
    )


@pytest.mark.parametrize("name", ["docker", "k8s"])
def test_the_environment_lists_are_written_from_the_settings_model(name: str):
    path = VARIANTS[name]
    assert path.read_text() == settings_docs.with_env_vars(
        path.read_text(), settings_docs.env_vars(name)
    ), f"{path.name} is out of date: run {settings_docs.COMMAND}"


def test_docker_runs_get_every_setting_and_the_dagster_flags(load_variant):
    passed = _passed_variables(load_variant("docker").run_launcher)
    assert len(passed) == len(set(passed))
    assert set(passed) == SETTINGS | FLAGS


def test_k8s_runs_get_every_setting_the_dagster_flags_and_the_secrets_from_the_secret(
    load_variant,
):
    launcher = load_variant("k8s").run_launcher
    text = VARIANTS["k8s"].read_text()
    secret_keys = set(re.findall(r"--from-literal=(COINMARKET_\w+)=", text))
    assert secret_keys == SECRETS
    assert set(launcher._env_vars) == (SETTINGS - SECRETS) | FLAGS  # secrets never in the Job


def _launcher_config(name: str) -> dict:
    return yaml.safe_load(VARIANTS[name].read_text())["run_launcher"]["config"]


@pytest.mark.parametrize(
    ("name", "launcher"), [("k8s", K8sRunLauncher), ("docker", DockerRunLauncher)]
)
def test_the_launcher_configurations_validate_and_a_typo_does_not(name: str, launcher):
    config = _launcher_config(name)
    assert validate_config(launcher.config_type(), config).success
    typo = {**config, "env_var": config["env_vars"]}
    result = validate_config(launcher.config_type(), typo)
    assert not result.success
    assert "env_var" in str(result.errors)


def _backfill_policies(**env: str) -> subprocess.CompletedProcess[str]:
    """The partitioned assets' backfill policies, loaded by a new interpreter with ``env``."""
    code = (
        "from coinmarket_assets.definitions import defs\n"
        "for a in defs.assets:\n"
        "    if a.partitions_def is not None:\n"
        "        print(a.key.to_user_string(), a.backfill_policy.max_partitions_per_run)\n"
    )
    return python_in_fresh_process(code, env, without_prefix="COINMARKET_BACKFILL_CHUNK_DAYS")


PARTITIONED = [
    "historical_listings",
    "global_metrics",
    "historical_trade_data",
    "historical_rolling",
    "period_returns",
    "top_ranking",
    "bottom_ranking",
    "market_index",
    "ranked_coin_chart",
]


def test_backfills_are_one_run_by_default():
    loaded = _backfill_policies()
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines() == [f"{key} None" for key in PARTITIONED]


def test_chunk_days_turn_every_partitioned_asset_into_chunked_runs():
    loaded = _backfill_policies(COINMARKET_BACKFILL_CHUNK_DAYS="30")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines() == [f"{key} 30" for key in PARTITIONED]


@pytest.mark.parametrize("value", ["0", "-5", "thirty", "1.5"])
def test_invalid_chunk_days_fail_naming_the_variable(value: str):
    loaded = _backfill_policies(COINMARKET_BACKFILL_CHUNK_DAYS=value)
    assert loaded.returncode != 0
    assert (
        f"COINMARKET_BACKFILL_CHUNK_DAYS must be a whole number, at least 1, not '{value}'"
        in loaded.stderr
    )


def test_with_chunk_days_a_ranged_run_still_stores_its_whole_range(
    database_url: str, csv_source: Path
):
    """The schedule's and the universe sensor's runs name a range in their tags, whatever the
    backfill policy: chunks only split backfills."""
    code = (
        "from dagster import DagsterInstance\n"
        "from coinmarket_assets.definitions import defs\n"
        "from coinmarket_assets.schedules import partition_range_tags\n"
        "result = defs.resolve_job_def('daily_market_data').execute_in_process(\n"
        "    instance=DagsterInstance.ephemeral(),\n"
        "    tags=partition_range_tags('2020-03-01', '2020-03-10'))\n"
        "print(result.success)\n"
    )
    environment = os.environ | {"COINMARKET_BACKFILL_CHUNK_DAYS": "2"}
    ran = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.stdout.strip().endswith("True"), ran.stderr[-3000:]
    assert read_table("historical_trade_data")["trade_date"].nunique() == 10
    # Returns (and rankings) need the close of 5 days before: from 2020-03-06 on.
    assert read_table("top_ranking")["trade_date"].nunique() == 5
