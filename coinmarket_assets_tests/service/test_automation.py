"""The daemon keeps the data current on its own: the schedule fires, the universe sensor fetches
a new coin's history, and a failed run reaches the alert webhook."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from coinmarket_assets_tests.dagster_runs import materialize_days, read_table
from coinmarket_assets_tests.service.conftest import (
    market_first_day,
    service_environment,
    yesterday,
)
from coinmarket_assets_tests.service.dagster_service import (
    DagsterService,
    run_tags,
    wait_for,
)
from coinmarket_assets_tests.webhook_receiver import WebhookReceiver, webhook_receiver
from coinmarket_testkit.synthetic import SyntheticMarket

pytestmark = pytest.mark.slow
NEW_COIN = "LATE"  # stored by nobody before the service starts
DAEMON_SECONDS = 240  # a tick a minute, and a run after it

LAUNCH_RUN = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def service(
    service_database: str,
    service_market: SyntheticMarket,
    webhook: WebhookReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DagsterService]:
    """The service over a history of every coin but one, with the schedule ticking every
    minute and the universe sensor looking every minute."""
    home = tmp_path_factory.mktemp("automation")
    known = [ticker for ticker in service_market.tickers if ticker != NEW_COIN]
    env = service_environment(home, service_database, service_market)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("COINMARKET_DATABASE_URL", "COINMARKET_SOURCE"):
            patch.setenv(name, env[name])
        patch.setenv("COINMARKET_TICKERS", ",".join(known))
        materialize_days(market_first_day().isoformat(), (yesterday() - timedelta(10)).isoformat())
    env |= {
        "COINMARKET_SCHEDULE_CRON": "* * * * *",
        "COINMARKET_UNIVERSE_SENSOR_INTERVAL": "60",
        "COINMARKET_ALERT_WEBHOOK": webhook.url,
    }
    with DagsterService(env, home / "dev.log") as running:
        yield running


def _stored(service: DagsterService, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_DATABASE_URL", service.env["COINMARKET_DATABASE_URL"])
    return read_table("historical_trade_data")


def test_the_schedule_fires_and_stores_the_day_that_just_ended(
    service: DagsterService, monkeypatch: pytest.MonkeyPatch
):
    tag = {"dagster/schedule_name": "daily_market_schedule"}
    run = service.wait_for_first_run(tag, DAEMON_SECONDS)
    assert run["status"] == "SUCCESS", service.output()[-4000:]
    assert run_tags(run)["dagster/asset_partition_range_end"] == yesterday().isoformat()
    stored = _stored(service, monkeypatch)
    newest = stored[stored["trade_date"].dt.date == yesterday()]
    assert len(newest) >= 4  # every coin already tracked


def test_the_universe_sensor_fetches_the_history_of_a_new_ticker(
    service: DagsterService, service_market: SyntheticMarket, monkeypatch: pytest.MonkeyPatch
):
    tag = {"dagster/sensor_name": "universe_sensor"}
    (run,) = service.wait_for_runs(tag, 1, DAEMON_SECONDS)
    assert run["status"] == "SUCCESS", service.output()[-4000:]
    assert NEW_COIN in run_tags(run)["coinmarket/new_coins"]
    stored = _stored(service, monkeypatch)
    late = stored[stored["ticker"] == NEW_COIN]
    expected = service_market.coin(NEW_COIN).candles
    assert len(late) == len(expected)  # its whole history, once


@pytest.fixture(scope="module", autouse=True)
def failed_run_id(service: DagsterService) -> str:
    """A run launched as the service starts, that fails on an unknown ticker: its alert is on
    its way while the tests before the alert's wait for the schedule and the sensor."""
    params = {
        "selector": {
            "repositoryLocationName": "coinmarket_assets.definitions",
            "repositoryName": "__repository__",
            "jobName": "daily_market_data",
        },
        "runConfigData": {"resources": {"pipeline_settings": {"config": {"tickers": "NOSUCH"}}}},
        "executionMetadata": {
            "tags": [
                {"key": "dagster/asset_partition_range_start", "value": yesterday().isoformat()},
                {"key": "dagster/asset_partition_range_end", "value": yesterday().isoformat()},
            ]
        },
    }
    launched = service.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def test_a_failed_run_reaches_the_alert_webhook(webhook: WebhookReceiver, failed_run_id: str):
    run_id = failed_run_id

    def alerted() -> str | None:
        texts = [message["text"] for message in webhook.received]
        return next((text for text in texts if run_id in text), None)

    text = wait_for(alerted, DAEMON_SECONDS, "the failure alert")
    assert "daily_market_data" in text and "NOSUCH" in text
    assert f"/runs/{run_id}" in text  # a link to the run in the UI


def test_nothing_in_the_service_log_shows_the_webhook_secret(
    service: DagsterService, webhook: WebhookReceiver
):
    assert Path(webhook.url).name not in service.output()
