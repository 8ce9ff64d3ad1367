"""Hostile credentials reach no output: not the launcher's, a run's logs, Dagster's storage or
its compute logs, nor the failure alert, whether runs succeed, retry or fail."""

import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context

from coinmarket_assets.sensors import run_failure_alert
from coinmarket_assets_tests.dagster_cli import cli_environment, start_materialize
from coinmarket_assets_tests.dagster_runs import PARTITIONED_ASSETS
from coinmarket_assets_tests.hostile_secrets import (
    API_KEY,
    API_KEY_AS_CONFIGURED,
    DB_PASSWORD,
    dagster_storage_text,
    leaks,
    with_password,
)
from coinmarket_assets_tests.launcher import COINMARKET, run_launcher
from coinmarket_assets_tests.webhook_receiver import webhook_receiver
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import SyntheticMarket

DAYS = "2020-01-01...2020-03-31"
RUN_SECONDS = 300


def _launcher(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_launcher([COINMARKET, *args], env, timeout=120)


def test_migrate_with_a_hostile_password_shows_none_of_it(database_url: str, tmp_path: Path):
    env = cli_environment(tmp_path, tmp_path, ["BTC"])
    # The embedded server trusts its socket: any password connects, so the URL must parse.
    encoded = _launcher(
        env | {"COINMARKET_DATABASE_URL": with_password(database_url, DB_PASSWORD)}, "migrate"
    )
    assert encoded.returncode == 0, encoded.stderr
    assert "schema is current" in encoded.stderr
    assert leaks(encoded.stdout + encoded.stderr) == []

    for raw_password in (DB_PASSWORD, "50%@off-DbSecret-4471"):
        raw = with_password(database_url, raw_password, encoded=False)
        refused = _launcher(env | {"COINMARKET_DATABASE_URL": raw}, "migrate")
        assert refused.returncode == 1
        assert refused.stderr.startswith("coinmarket: error: COINMARKET_DATABASE_URL cannot be")
        assert len(refused.stderr.strip().splitlines()) == 1
        assert leaks(refused.stdout + refused.stderr) == []


def _environment(
    tmp_path: Path, market: SyntheticMarket, server: FakeCoinMarketCap, database_url: str
) -> dict[str, str]:
    env = cli_environment(tmp_path, tmp_path / "unused", market.tickers)
    return env | {
        "COINMARKET_DATABASE_URL": with_password(database_url, DB_PASSWORD),
        "COINMARKET_SOURCE": "coinmarketcap",
        "COINMARKET_CMC_BASE_URL": server.data_api_url,
        "COINMARKET_CMC_PRO_BASE_URL": server.pro_api_url,
        # As a CRLF .env file gives it: stripped, it is the key the server accepts.
        "COINMARKET_CMC_API_KEY": API_KEY_AS_CONFIGURED,
        "COINMARKET_CMC_RATE_LIMIT": "100",
        "COINMARKET_CMC_BACKOFF_SECONDS": "0.05",
        "COINMARKET_CMC_RETRY_BUDGET": "4",
    }


def _run(env: dict[str, str], assets: list[str], log: Path) -> int:
    days = None if assets == ["currency_status"] else DAYS
    return start_materialize(env, assets, days, log).wait(RUN_SECONDS)


def _files_text(folder: Path) -> str:
    """Every file under ``folder`` (run logs, Dagster's compute logs), as text."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    return "\n".join(path.read_bytes().decode(errors="replace") for path in files)


def _alert_text(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """What the run-failure sensor posts for the newest failed run, to a real webhook."""
    for name in ("DAGSTER_HOME", "COINMARKET_DATABASE_URL", "COINMARKET_CMC_API_KEY"):
        monkeypatch.setenv(name, env[name])
    with DagsterInstance.get() as instance, webhook_receiver() as receiver:
        monkeypatch.setenv("COINMARKET_ALERT_WEBHOOK", receiver.url)
        run = instance.get_runs(limit=1)[0]
        failure = instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.RUN_FAILURE
        ).records[0]
        run_failure_alert(
            build_run_status_sensor_context(
                sensor_name="run_failure_alert",
                dagster_instance=instance,
                dagster_run=run,
                dagster_event=failure.event_log_entry.dagster_event,
            )
        )
    assert len(receiver.received) == 1
    return receiver.received[0]["text"]


@pytest.mark.slow
def test_runs_that_retry_and_fail_never_show_a_hostile_credential(
    database_url: str, market: SyntheticMarket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with FakeCoinMarketCap(market, api_key=API_KEY, max_days=60) as server:
        env = _environment(tmp_path, market, server, database_url)
        server.fail_next(2, 503)
        server.fail_next(1, 429, retry_after=0.1)
        assert _run(env, ["currency_status"], tmp_path / "status.log") == 0
        server.truncate_next(1)
        server.malformed_next(1)
        assert _run(env, PARTITIONED_ASSETS, tmp_path / "days.log") == 0
        # A proxy that quotes the credentials it was given back in its refusal.
        echoed = f"key {API_KEY_AS_CONFIGURED!r} and password {DB_PASSWORD} refused"
        server.error_payload_next(50, "1001", echoed)
        assert _run(env, PARTITIONED_ASSETS, tmp_path / "failed.log") != 0
        alert = _alert_text(env, monkeypatch)

    control_key = env | {"COINMARKET_CMC_API_KEY": f"{API_KEY[:6]}\r{API_KEY[6:]}"}
    assert _run(control_key, PARTITIONED_ASSETS, tmp_path / "bad_key.log") != 0
    wrong_database = env | {
        "COINMARKET_DATABASE_URL": env["COINMARKET_DATABASE_URL"].replace(
            urlsplit(database_url).path, "/no_such_database"
        )
    }
    assert _run(wrong_database, PARTITIONED_ASSETS, tmp_path / "no_db.log") != 0

    logs = {path.name: path.read_text() for path in tmp_path.glob("*.log")}
    assert "retry" in logs["days.log"].lower() or "Retrying" in logs["status.log"]
    assert "password *** refused" in logs["failed.log"]  # the error is shown, masked
    assert "COINMARKET_CMC_API_KEY holds a control" in logs["bad_key.log"]
    assert "no_such_database" in logs["no_db.log"]  # the error names what is wrong
    assert "password *** refused" in alert
    assert leaks(alert) == []
    assert leaks(_files_text(tmp_path)) == []  # run logs, Dagster's home and compute logs
    assert leaks(dagster_storage_text(database_url)) == []
