"""One polite HTTP session: timeouts, a client-side rate limit, retries with backoff and a budget.

Transient failures (connection errors, timeouts, 429, 5xx, truncated or non-JSON bodies, and
"busy" error codes inside HTTP 200 answers) are retried with exponential backoff and jitter,
honouring ``Retry-After``. Every retry spends from a budget per client, in count and in seconds
waited, so a flaky API fails a run in minutes instead of stalling it for hours.

The budget's seconds are the wall-clock time during which any worker waits to retry: each
worker's backoff and the pause a ``Retry-After`` imposes on every worker all count, overlapping
waits once, so retries stall a step for at most ``retry_budget_seconds`` whatever the number of
workers. A wait that would overrun the budget fails at once instead of being slept first.

``Retry-After`` is read as seconds or as an HTTP date. A negative number or a past date asks for
no pause (the backoff still applies); a value that is neither a number nor a date (NaN included)
is ignored; an infinite or huge one overruns the budget, so the request fails at once.

Waits end early when the client is stopped: ``fetch_each`` stops them as soon as one fetch fails
or its caller is interrupted (as Dagster interrupts a step whose run is terminated).
"""

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from pyrate_limiter import InMemoryBucket, Limiter, Rate
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    sleep_using_event,
    stop_after_attempt,
    wait_exponential_jitter,
)

from coinmarket_assets.sources.base import SourceError
from coinmarket_assets.sources.coinmarketcap.settings import USER_AGENT, ClientSettings

log = logging.getLogger(__name__)

# Error codes CoinMarketCap puts in HTTP 200 answers when it is overloaded or rate limiting.
TRANSIENT_ERROR_CODES = {"429", "500", "502", "503", "504", "1008", "1011"}
# How often a worker waiting for the rate limit checks whether it was stopped.
RATE_WAIT_SLICE_SECONDS = 0.25
T = TypeVar("T")
R = TypeVar("R")


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


class FetchStoppedError(SourceError):
    """The client was stopped (another fetch failed, or the step is ending) while this one ran."""


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
        self._stopped = threading.Event()
        self._budget_lock = threading.Lock()
        self._not_before = 0.0  # monotonic time before which no request may start
        self._waited_until = 0.0  # monotonic end of the latest wait charged to the budget
        self.retries = 0
        self.seconds_waited = 0.0

    def fetch_each(self, fetch: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fetch(item)`` of every item, in order, on ``max_workers`` threads.

        The first failure, or an interrupt of the calling thread, stops the client: the fetches
        not started are cancelled and every waiting worker wakes and gives up, so that the step
        ends without sitting out the others' backoffs and pauses. That failure is raised.
        """
        failures: list[BaseException] = []

        def fetch_or_stop(item: T) -> R:
            try:
                return fetch(item)
            except BaseException as error:
                failures.append(error)  # before the stop, so the first is the cause
                self._stopped.set()
                raise

        try:
            with ThreadPoolExecutor(self.settings.max_workers) as pool:
                futures = [pool.submit(fetch_or_stop, item) for item in items]
                try:
                    wait(futures, return_when=FIRST_EXCEPTION)
                    if failures:
                        raise failures[0]
                except BaseException:
                    self._stopped.set()
                    pool.shutdown(cancel_futures=True)
                    raise
            return [future.result() for future in futures]
        finally:
            self._stopped.clear()  # every worker has returned: the client may be used again

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
            sleep=sleep_using_event(self._stopped),  # returns early when stopped
            reraise=True,
        )
        return retrying(self._get_once, url, params, headers or {})

    def _get_once(
        self, url: str, params: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        self._wait_for_pause()
        self._wait_for_rate_limit()
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        try:
            response = self.session.get(url, params=params, headers=headers, timeout=timeout)
            body = response.content
        except requests.RequestException as error:
            raise TransientApiError(f"{url}: {type(error).__name__}: {error}") from error
        if response.status_code == 429 or response.status_code >= 500:
            error = _transient(url, response)
            if error.retry_after is not None:
                self._pause_all(error.retry_after, error)
            raise error
        if response.status_code >= 400:
            raise _refusal(url, response.status_code, body)
        payload = _json(url, response.status_code, body)
        _check_status(url, response.status_code, payload)
        return payload

    def _pause_all(self, seconds: float, error: TransientApiError) -> None:
        """The server asked for a pause: every worker of this client sits it out, unless it
        would overrun the budget, in which case the request fails now."""
        with self._budget_lock:
            left = self.settings.retry_budget_seconds - self.seconds_waited
            if not self._charge(seconds):
                raise RetryBudgetExhaustedError(
                    f"the server asked to wait {_seconds(seconds)} before retrying, more than the "
                    f"{_seconds(left)} left of the retry budget "
                    f"({_seconds(self.settings.retry_budget_seconds)} of waiting per step): {error}"
                ) from error
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def _charge(self, seconds: float) -> bool:
        """Charge a wait of ``seconds`` from now to the budget, less any part of it that waits
        already charged cover; False, charging nothing, if that would overrun the budget.
        Called with the budget lock held."""
        now = time.monotonic()
        end = now + seconds
        added = max(0.0, end - max(now, self._waited_until))
        if self.seconds_waited + added > self.settings.retry_budget_seconds:
            return False
        self.seconds_waited += added
        self._waited_until = max(self._waited_until, end)
        return True

    def _wait_for_pause(self) -> None:
        """Sit out a pause the server asked for (charged when it was asked for)."""
        while (pause := self._not_before - time.monotonic()) > 0:
            self._stopped.wait(pause)
            self._raise_if_stopped()
        self._raise_if_stopped()

    def _wait_for_rate_limit(self) -> None:
        # In slices, so that a stopped client does not first wait for its turn.
        while not self._limiter.try_acquire("coinmarketcap", timeout=RATE_WAIT_SLICE_SECONDS):
            self._raise_if_stopped()
        self._raise_if_stopped()

    def _raise_if_stopped(self) -> None:
        if self._stopped.is_set():
            raise FetchStoppedError("stopped: another fetch failed or the step is ending")

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
            within = self.retries <= self.settings.retry_budget and self._charge(wait)
        if not within:
            budget = self.settings
            raise RetryBudgetExhaustedError(
                f"retry budget spent (at most {budget.retry_budget} retries and "
                f"{budget.retry_budget_seconds:.0f} s of waiting per step); last error: {error}"
            ) from error
        log.warning("retrying in %.1f s after: %s", wait, error)


def _transient(url: str, response: requests.Response) -> TransientApiError:
    header = response.headers.get("Retry-After")
    if header is None:
        return TransientApiError(f"{url}: HTTP {response.status_code}")
    message = f"{url}: HTTP {response.status_code} (Retry-After: {header})"
    return TransientApiError(message, _retry_after(header))


def _retry_after(value: str) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay seconds or an HTTP date; None when
    it is neither (ignored: the backoff applies)."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        # A "-0000" zone parses naive: the date is still in UTC, not local time.
        seconds = moment.replace(tzinfo=moment.tzinfo or UTC).timestamp() - time.time()
    return None if math.isnan(seconds) else max(0.0, seconds)


def _seconds(value: float) -> str:
    """``3600 s``, ``0.5 s``, ``1e+308 s``, ``inf s``."""
    text = f"{value:.1f}".removesuffix(".0") if value < 1e9 else f"{value:.3g}"
    return f"{text} s"


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
