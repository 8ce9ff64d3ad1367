"""Run failure alerts: a short message, posted to a Slack-compatible webhook when one is set."""

from collections.abc import Mapping, Sequence
from typing import Protocol

from dagster import DagsterEvent, DagsterRun

from coinmarket_assets.masking import mask
from coinmarket_assets.settings import AlertSettings

WEBHOOK_TIMEOUT_SECONDS = 10
ERROR_CHARACTERS = 500  # a chat message, not a log: the UI link leads to the whole error


class Log(Protocol):
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...


def alert_webhook() -> str | None:
    """The webhook URL, a secret: it goes into requests only, never into a log or message."""
    return AlertSettings.from_env().alert_webhook


def ui_url() -> str:
    """The Dagster UI's base URL, for links in messages."""
    return AlertSettings.from_env().ui_url


def run_days(tags: Mapping[str, str]) -> str | None:
    """The day or range of days a run materialized, from its partition tags."""
    first = tags.get("dagster/asset_partition_range_start")
    last = tags.get("dagster/asset_partition_range_end")
    if first and last:
        return first if first == last else f"{first}...{last}"
    return tags.get("dagster/partition")


def first_error(step_failures: Sequence[DagsterEvent], run_failure: DagsterEvent | None) -> str:
    """The first failed step's error (what was raised, not Dagster's wrapper around it), or why
    the run failed when no step did."""
    for event in step_failures:
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description
        error = data.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            return error.message.strip()
    if run_failure is not None and run_failure.message:
        return run_failure.message
    return "unknown error"


def _shortened(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARACTERS else text[: ERROR_CHARACTERS - 3] + "..."


def failure_message(
    run: DagsterRun,
    step_failures: Sequence[DagsterEvent],
    run_failure: DagsterEvent | None = None,
    base_url: str | None = None,
) -> str:
    """A few lines: job, days, failed steps, the first error and a link to the run; every known
    secret masked."""
    lines = [f"Dagster run failed: {run.job_name}"]
    days = run_days(run.tags)
    if days:
        lines.append(f"Days: {days}")
    steps = sorted({event.step_key for event in step_failures if event.step_key})
    if steps:
        lines.append(f"Failed steps: {', '.join(steps)}")
    # Masked before shortening, which could otherwise cut a secret and leave a piece of it.
    lines.append(f"Error: {_shortened(mask(first_error(step_failures, run_failure)))}")
    lines.append(f"{base_url or ui_url()}/runs/{run.run_id}")
    return mask("\n".join(lines))


def post_alert(webhook: str, text: str, log: Log) -> bool:
    """POST ``{"text": text}`` to the webhook; a failure is logged (without the URL, which is a
    secret and which requests puts into its error messages) and never raised."""
    import requests  # only when a run failed: the sensors' module stays quick to load

    try:
        response = requests.post(
            webhook, json={"text": mask(text)}, timeout=WEBHOOK_TIMEOUT_SECONDS
        )
    except requests.RequestException as error:
        log.warning(f"The alert webhook could not be reached ({type(error).__name__})")
        return False
    if not response.ok:
        log.warning(f"The alert webhook answered HTTP {response.status_code}")
        return False
    log.info("Posted the alert to the webhook")
    return True
