"""Which errors a step retries: only those that may go away by themselves."""

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dagster import Backoff, DagsterError, Failure, Jitter, RetryPolicy, RetryRequested

from coinmarket_assets.masking import mask
from coinmarket_assets.storage.database import is_lost_connection

# A step that failed for a transient reason (the database or the network went away for longer
# than the IO manager's and the client's own retries wait) runs again after about 30 s, then
# about 90 s. Every other error fails the step at once: see ``fail_without_retry_unless_transient``.
TRANSIENT_ERROR_RETRIES = RetryPolicy(
    max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


def is_transient(error: Exception) -> bool:
    """Whether ``error`` may go away by itself: the database or a network peer was unreachable.

    A ``SourceError`` is never transient here: the CoinMarketCap client has already retried
    within its budget, and retrying the step would spend that budget again.
    """
    # Imported here, not with the code location: loading requests takes about 0.1 s.
    import requests

    return is_lost_connection(error) or isinstance(
        error, ConnectionError | TimeoutError | requests.ConnectionError | requests.Timeout
    )


@contextmanager
def no_retry_unless_transient() -> Iterator[None]:
    try:
        yield
    except (RetryRequested, Failure, DagsterError):
        raise
    except Exception as error:
        if is_transient(error):
            raise
        # Bad data, unknown tickers, invalid settings and bugs fail the same way on every
        # attempt; Dagster skips the retry policy for a Failure that disallows retries.
        raise Failure(
            description=mask(f"{type(error).__name__}: {error}"), allow_retries=False
        ) from error


def fail_without_retry_unless_transient(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a plain or generator asset function), raising every non-transient error as a
    ``dagster.Failure`` that the retry policy does not retry."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with no_retry_unless_transient():
                yield from fn(*args, **kwargs)

        return generator

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any) -> Any:
        with no_retry_unless_transient():
            return fn(*args, **kwargs)

    return function
