"""Transport faults: HTTP errors with ``Retry-After``, error payloads inside HTTP 200, and slow,
truncated or malformed answers, each for the next ``n`` matching requests.

A fault matches a request whose target (path and query string) contains its ``path``.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from http import HTTPStatus

from coinmarket_testkit.wire import Response, json_response, status

MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)
# An answer rewritten by a fault; the flag tells whether the request was for the Pro API.
Rewrite = Callable[[Response, bool], Response]


@dataclass
class Fault:
    """A fault left for ``remaining`` more requests whose target contains ``path``."""

    remaining: int
    path: str
    seconds: float = 0.0
    apply: Rewrite | None = None


class TransportFaults:
    """The faults waiting for their requests: slow ones delay the answer, broken ones rewrite
    it (or act once it is made)."""

    def __init__(self) -> None:
        self._fault_lock = threading.Lock()
        self._slow: list[Fault] = []
        self._broken: list[Fault] = []

    def fail_next(
        self, n: int, status: int = 429, retry_after: float | str | None = None, path: str = ""
    ) -> None:
        """Answer HTTP ``status`` with a JSON status body, and ``Retry-After`` when given.

        A number is sent as an integer when whole, else as a decimal (e.g. "0.2") so tests can
        stay fast; clients should parse it as a float. A string is sent as it is: an HTTP date,
        "inf", "-5", "soon", ...
        """
        headers = () if retry_after is None else (("Retry-After", _retry_after(retry_after)),)
        self._add(self._broken, Fault(n, path, apply=_failure(status, headers)))

    def error_payload_next(
        self, n: int, code: str = "500", message: str = "The system is busy", path: str = ""
    ) -> None:
        """Answer HTTP 200 with only a ``status`` whose ``error_code`` is ``code``."""

        def error(_: Response, pro: bool) -> Response:
            return json_response(200, {"status": status(code, message, pro)})

        self._add(self._broken, Fault(n, path, apply=error))

    def slow_next(self, n: int, seconds: float, path: str = "") -> None:
        """Wait ``seconds`` before answering (combines with the other faults)."""
        self._add(self._slow, Fault(n, path, seconds=seconds))

    def truncate_next(self, n: int, path: str = "") -> None:
        """Announce the full Content-Length, send half the body, then close the connection."""
        self._add(self._broken, Fault(n, path, apply=lambda r, _: replace(r, truncate=True)))

    def malformed_next(self, n: int, path: str = "") -> None:
        """Answer HTTP 200 with an HTML page instead of JSON."""
        html = Response(200, MAINTENANCE_PAGE.encode(), content_type="text/html; charset=utf-8")
        self._add(self._broken, Fault(n, path, apply=lambda _r, _p: html))

    def after_next(self, path: str, action: Callable[[], None]) -> None:
        """Run ``action`` once the next matching answer is made, before it is sent."""

        def act(answer: Response, _pro: bool) -> Response:
            action()
            return answer

        self._add(self._broken, Fault(1, path, apply=act))

    def take_slow(self, target: str) -> Fault | None:
        """The slow fault this request consumes, if any."""
        return self._take(self._slow, target)

    def take_broken(self, target: str) -> Fault | None:
        """The broken-answer fault this request consumes, if any."""
        return self._take(self._broken, target)

    def _add(self, faults: list[Fault], fault: Fault) -> None:
        if fault.remaining > 0:
            with self._fault_lock:
                faults.append(fault)

    def _take(self, faults: list[Fault], target: str) -> Fault | None:
        with self._fault_lock:
            fault = next((f for f in faults if f.path in target), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    faults.remove(fault)
            return fault


def _failure(status_code: int, headers: tuple[tuple[str, str], ...]) -> Rewrite:
    """An HTTP ``status_code`` answer in the requested API's status shape."""

    def fail(_: Response, pro: bool) -> Response:
        body = {"status": status(str(status_code), _phrase(status_code), pro)}
        return json_response(status_code, body, headers)

    return fail


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def _retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
