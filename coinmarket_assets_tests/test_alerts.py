"""The failure alert's message, and posting it to a webhook over a real loopback socket."""

import json
import logging
import socket

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, Failure, job, op

from coinmarket_assets.alerts import alert_webhook, failure_message, post_alert, ui_url
from coinmarket_assets.schedules import partition_range_tags
from coinmarket_assets.settings import SettingsError
from coinmarket_assets_tests.hostile_secrets import (
    API_KEY,
    API_KEY_AS_CONFIGURED,
    DB_PASSWORD,
    leaks,
    with_password,
)
from coinmarket_assets_tests.webhook_receiver import WEBHOOK_PATH, webhook_receiver

log = logging.getLogger("coinmarket_assets_tests.alerts")


def _failed_run(error: Exception, tags: dict[str, str] | None = None) -> ExecuteInProcessResult:
    @op
    def fetch_candles() -> None:
        raise error

    @op
    def succeed() -> None:
        pass

    @job
    def market_job() -> None:
        fetch_candles()
        succeed()

    return market_job.execute_in_process(
        instance=DagsterInstance.ephemeral(), tags=tags or {}, raise_on_error=False
    )


def _message(result: ExecuteInProcessResult, **kwargs: str) -> str:
    return failure_message(
        result.dagster_run,
        result.get_step_failure_events(),
        result.get_run_failure_event(),
        **kwargs,
    )


def test_the_message_names_job_days_step_error_and_link(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COINMARKET_UI_URL", "https://dagster.example.com/")
    result = _failed_run(
        ValueError("BETA 2020-02-03: close is not a number ('nan')"),
        partition_range_tags("2020-02-01", "2020-02-05"),
    )
    assert _message(result).splitlines() == [
        "Dagster run failed: market_job",
        "Days: 2020-02-01...2020-02-05",
        "Failed steps: fetch_candles",
        "Error: ValueError: BETA 2020-02-03: close is not a number ('nan')",
        f"https://dagster.example.com/runs/{result.run_id}",
    ]


def test_the_message_of_a_failure_uses_its_description_and_a_single_day(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("COINMARKET_UI_URL", raising=False)
    result = _failed_run(
        Failure(description="UnknownTickersError: Unknown tickers: NOPE", allow_retries=False),
        {"dagster/partition": "2020-02-03"},
    )
    lines = _message(result).splitlines()
    assert lines[1] == "Days: 2020-02-03"
    assert lines[3] == "Error: UnknownTickersError: Unknown tickers: NOPE"
    assert lines[4] == f"http://127.0.0.1:3000/runs/{result.run_id}"


def test_a_long_error_is_shortened_and_without_the_step_it_names_the_run_failure():
    result = _failed_run(RuntimeError("x" * 2000))
    error_line = _message(result).splitlines()[2]
    assert error_line.startswith("Error: RuntimeError: xxx")
    assert error_line.endswith("...")
    assert len(error_line) < 520

    no_steps = failure_message(result.dagster_run, [], result.get_run_failure_event())
    assert "Failed steps" not in no_steps
    assert 'Error: Execution of run for "market_job" failed.' in no_steps


def test_the_alert_is_posted_as_slack_compatible_json():
    with webhook_receiver() as receiver:
        assert post_alert(receiver.url, "Dagster run failed: x", log)
    assert receiver.received == [{"text": "Dagster run failed: x"}]
    assert receiver.paths == [WEBHOOK_PATH]


def test_a_webhook_that_refuses_is_logged_without_its_url(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    with webhook_receiver() as receiver:
        receiver.status = 500
        assert not post_alert(receiver.url, "Dagster run failed: x", log)
    assert "The alert webhook answered HTTP 500" in caplog.text
    assert "secret-token" not in caplog.text


def test_an_unreachable_webhook_is_logged_without_its_url(caplog: pytest.LogCaptureFixture):
    with socket.socket() as unused:  # a port nobody listens on once the socket is closed
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    assert not post_alert(url, "Dagster run failed: x", log)
    assert "The alert webhook could not be reached (ConnectionError)" in caplog.text
    assert "secret-token" not in caplog.text


def test_secrets_in_the_error_are_masked_in_the_message_and_the_posted_alert(
    monkeypatch: pytest.MonkeyPatch,
):
    """The run here is stored by an ephemeral instance, which masks nothing: the alert itself
    masks. The secret sits past the shortening point, where a cut would leave a piece."""
    with webhook_receiver() as receiver:
        monkeypatch.setenv("COINMARKET_ALERT_WEBHOOK", receiver.url)
        monkeypatch.setenv("COINMARKET_CMC_API_KEY", API_KEY_AS_CONFIGURED)
        monkeypatch.setenv(
            "COINMARKET_DATABASE_URL", with_password("postgresql://u@db/x", DB_PASSWORD)
        )
        # The key straddles the cut at 500 characters: its first 14 would be left.
        error = ValueError(f"{'x' * 470} {API_KEY} {DB_PASSWORD} {API_KEY_AS_CONFIGURED!r}")
        message = _message(_failed_run(error))
        assert post_alert(receiver.url, f"{message} {receiver.url}", log)
    assert "Error: ValueError: xxx" in message
    assert leaks(message) == []
    assert leaks(json.dumps(receiver.received)) == []
    assert "secret-token" not in json.dumps(receiver.received)  # the webhook's own path


@pytest.mark.parametrize("value", ["hooks.slack.com/services/x", "ftp://hooks.example.com/x"])
def test_a_webhook_that_is_not_an_http_url_fails_without_showing_it(
    value: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_ALERT_WEBHOOK", value)
    with pytest.raises(SettingsError) as refused:
        alert_webhook()
    assert str(refused.value) == "COINMARKET_ALERT_WEBHOOK must be an http:// or https:// URL"


def test_a_ui_url_that_is_not_an_http_url_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("COINMARKET_UI_URL", "dagster.example.com")
    with pytest.raises(SettingsError, match="COINMARKET_UI_URL must be an http"):
        ui_url()
