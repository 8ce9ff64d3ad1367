"""One polite HTTP session: timeouts, a client-side rate limit, retries with backoff and a budget.

Transient failures (connection errors, timeouts, 429, 5xx, truncated or non-JSON bodies, and
"busy" error codes inside HTTP 200 answers) are retried with exponential backoff and jitter,
honouring ``Retry-After``. Every retry spends from a budget per client, in count and in seconds
waited, so a flaky API fails a run in minutes instead of stalling it for hours.
"""

import logging
import math
import threading
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from pyrate_limiter import InMemoryBucket, Limiter, Rate
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from coinmarket_assets.sources.base import SourceError
from coinmarket_assets.sources.coinmarketcap.settings import USER_AGENT, ClientSettings

log = logging.getLogger(__name__)

# Error codes CoinMarketCap puts in HTTP 200 answers when it is overloaded or rate limiting.
TRANSIENT_ERROR_CODES = {"429", "500", "502", "503", "504", "1008", "1011"}


class ApiError(SourceError):
    """CoinMarketCap refused a request for good: bad parameters, key or plan."""

    def __init__(self, message: str, http_status: int, error_code: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code


class TransientApiError(SourceError):
    """A failure worth retrying; ``retry_after`` is the server's requested wait, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryBudgetExhaustedError(SourceError):
    """The client has retried as much as a run may."""


# The limiter counts whole milliseconds and sleeps at least one: spacing every request alone
# loses ~10% of a rate of 50/s. Above 10/s, a 100 ms window holds rate/10 requests instead.
LIMITER_WINDOW_MS = 100


def per_second_limiter(requests_per_second: float) -> Limiter:
    """At most one request per 1 / rate seconds, or above 10/s at most rate/10 per 100 ms
    (windows rounded up to the millisecond): no window of 100 ms or more holds more than its
    share of the rate."""
    per_window = max(1, math.floor(requests_per_second * LIMITER_WINDOW_MS / 1000))
    window_ms = math.ceil(per_window * 1000 / requests_per_second)
    # A 1 ms scheduling buffer (the default is 50 ms) keeps high rates near their limit.
    return Limiter(InMemoryBucket([Rate(per_window, window_ms)]), buffer_ms=1)


class ApiClient:
    """GETs JSON from CoinMarketCap's APIs within the rate limit and retry budget."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._limiter = per_second_limiter(settings.rate_limit)
        self._budget_lock = threading.Lock()
        self._not_before = 0.0  # monotonic time before which no request may start
        self.retries = 0
        self.seconds_waited = 0.0

    def get_json(
        self, url: str, params: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The JSON body of a successful answer; raises ``ApiError`` or, when retries run out,
        the last transient error."""
        retrying = Retrying(
            retry=retry_if_exception_type(TransientApiError),
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            before_sleep=self._spend_budget,
            reraise=True,
        )
        return retrying(self._get_once, url, params, headers or {})

    def _get_once(
        self, url: str, params: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        self._wait_for_retry_after()
        self._limiter.try_acquire("coinmarketcap")
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        try:
            response = self.session.get(url, params=params, headers=headers, timeout=timeout)
            body = response.content
        except requests.RequestException as error:
            raise TransientApiError(f"{url}: {type(error).__name__}: {error}") from error
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = _retry_after(response.headers)
            if retry_after is not None:
                self._hold_all_requests(retry_after)
            raise TransientApiError(f"{url}: HTTP {response.status_code}", retry_after)
        if response.status_code >= 400:
            raise _refusal(url, response.status_code, body)
        payload = _json(url, response.status_code, body)
        _check_status(url, response.status_code, payload)
        return payload

    def _hold_all_requests(self, seconds: float) -> None:
        """The server asked for a pause: every thread of this client waits it out."""
        with self._budget_lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def _wait_for_retry_after(self) -> None:
        while (pause := self._not_before - time.monotonic()) > 0:
            time.sleep(pause)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        backoff = wait_exponential_jitter(
            multiplier=self.settings.backoff_seconds,
            max=self.settings.max_backoff_seconds,
            jitter=self.settings.backoff_seconds,
        )(state)
        retry_after = getattr(error, "retry_after", None)
        return max(backoff, retry_after) if retry_after is not None else backoff

    def _spend_budget(self, state: RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action else 0.0
        error = state.outcome.exception() if state.outcome else None
        with self._budget_lock:
            self.retries += 1
            self.seconds_waited += wait
            over = (
                self.retries > self.settings.retry_budget
                or self.seconds_waited > self.settings.retry_budget_seconds
            )
        if over:
            budget = self.settings
            raise RetryBudgetExhaustedError(
                f"retry budget spent (at most {budget.retry_budget} retries and "
                f"{budget.retry_budget_seconds:.0f} s of waiting per step); last error: {error}"
            ) from error
        log.warning("retrying in %.1f s after: %s", wait, error)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _json(url: str, status: int, body: bytes) -> dict[str, Any]:
    try:
        payload = requests.models.complexjson.loads(body)
    except ValueError as error:
        # Truncated answers and HTML error pages from the CDN are passing trouble.
        raise TransientApiError(f"{url}: HTTP {status} with a body that is not JSON") from error
    if not isinstance(payload, dict):
        raise TransientApiError(f"{url}: HTTP {status} with JSON that is not an object")
    return payload


def _refusal(url: str, http_status: int, body: bytes) -> ApiError:
    """A 4xx answer, JSON or not (a CDN's HTML page), as a final error."""
    try:
        status = (requests.models.complexjson.loads(body) or {}).get("status") or {}
    except (ValueError, AttributeError):
        status = {}
    code = str(status.get("error_code", http_status))
    message = status.get("error_message") or "no JSON error message"
    return ApiError(f"{url}: HTTP {http_status}, error_code {code} ({message})", http_status, code)


def _check_status(url: str, http_status: int, payload: dict[str, Any]) -> None:
    status = payload.get("status") or {}
    code = str(status.get("error_code", "0"))
    message = status.get("error_message") or ""
    if code in TRANSIENT_ERROR_CODES:
        raise TransientApiError(f"{url}: error_code {code} ({message})")
    if code != "0":
        raise ApiError(
            f"{url}: HTTP {http_status}, error_code {code} ({message})", http_status, code
        )
