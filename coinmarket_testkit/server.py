"""A CoinMarketCap-compatible HTTP server on 127.0.0.1 for tests of the live client.

It serves a ``SyntheticMarket`` through the keyless data-api (``/data-api``) and the Pro API
(``/pro``) in their wire shapes, and can be told to misbehave the way the real service does:
the data faults of ``FakeMarket``, the transport faults of ``TransportFaults``, and ranks that
shift or coins that disappear between two requests. Requests without a browser's User-Agent
get Cloudflare's block page, as from the real site.
"""

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qsl, urlsplit

from coinmarket_testkit import data_api, pro_api
from coinmarket_testkit.faults import TransportFaults
from coinmarket_testkit.market import FakeMarket
from coinmarket_testkit.synthetic import SyntheticMarket
from coinmarket_testkit.wire import Response, not_found

# In the paths of both APIs' paged listings, the historical ones included.
LISTING_PAGES = "/cryptocurrency/listing"
CLOUDFLARE_PAGE = (
    "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
    "<body><h1>Sorry, you have been blocked</h1></body></html>"
)


@dataclass(frozen=True)
class RequestRecord:
    """One answered request; ``time`` is ``time.monotonic()`` when it arrived."""

    time: float
    method: str
    path: str
    query: dict[str, str]
    status: int
    user_agent: str | None


class FakeCoinMarketCap(FakeMarket, TransportFaults):
    """The data-api and Pro API over loopback, serving ``market`` with injectable faults.

    The market's candles are copied at construction; change them with the data faults.
    ``max_days`` caps the candles of one data-api historical answer (the real API: 400).
    ``honour_time_start`` (default False, like the real API) makes that endpoint drop candles
    whose day ends before ``timeStart``. ``pro_ohlcv_allowed`` and ``pro_listings_allowed`` say
    whether the key's plan includes the Pro OHLCV history and historical listings. Transport
    faults apply to the next ``n`` requests whose target (path and query string) contains
    ``path``; requests refused for their User-Agent do not consume faults.
    """

    def __init__(
        self,
        market: SyntheticMarket,
        *,
        api_key: str | None = None,
        pro_ohlcv_allowed: bool = False,
        pro_listings_allowed: bool = False,
        max_days: int = 400,
    ) -> None:
        FakeMarket.__init__(self, market)
        TransportFaults.__init__(self)
        self.api_key = api_key
        self.pro_ohlcv_allowed = pro_ohlcv_allowed
        self.pro_listings_allowed = pro_listings_allowed
        self.max_days = max_days
        self.honour_time_start = False
        self.global_max_quotes = 2200  # global metrics quotes per answer (real cap unknown)
        self._stopping = threading.Event()
        self._log_lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on a free port of 127.0.0.1 and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("FakeCoinMarketCap is already running")
        self._stopping.clear()
        self._server = _Server(self)
        # A short poll interval keeps stop() fast; serve_forever sleeps in select between polls.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-cmc-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections, wake slow answers and join every thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        self._stopping.set()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeCoinMarketCap is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_api_url(self) -> str:
        return self.base_url + data_api.PREFIX

    @property
    def pro_api_url(self) -> str:
        return self.base_url + pro_api.PREFIX

    # -- request log ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the answered requests, in the order their answers were made."""
        with self._log_lock:
            return list(self._records)

    def reset_requests(self) -> None:
        with self._log_lock:
            self._records.clear()

    def record(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._records.append(record)

    # -- changes between two requests -----------------------------------------------------------

    def delist_after_next(self, ticker: str | int) -> None:
        """Delist the coin right after its next history answer (it disappears mid-backfill)."""
        coin_id = self.coin(ticker).coin_id
        self.after_next(f"id={coin_id}&", lambda: self.delist(coin_id))

    def rerank_after_next_listing_page(self, ticker: str | int, market_cap: float) -> None:
        """Give the coin ``market_cap`` right after the next listing page (data-api listing or
        Pro latest listings), as ranks shift while a client pages through them: a coin that
        falls past the page boundary is listed twice, at two ranks, and one that rises past it
        is missed."""
        coin_id = self.coin(ticker).coin_id
        self.after_next(LISTING_PAGES, lambda: self.set_market_cap(coin_id, market_cap))

    # -- answering ------------------------------------------------------------------------------

    def respond(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Response:
        """The answer to an accepted request, faults included."""
        target = path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
        slow = self.take_slow(target)
        if slow is not None:
            self._stopping.wait(slow.seconds)
        pro = path.startswith(pro_api.PREFIX + "/")
        broken = self.take_broken(target)
        with self._lock:
            answer = self._route(path, query, headers)
        return answer if broken is None or broken.apply is None else broken.apply(answer, pro)

    def _route(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Response:
        if path.startswith(data_api.PREFIX + "/"):
            limits = data_api.HistoryLimits(
                self.max_days, self.honour_time_start, self.global_max_quotes
            )
            return data_api.answer(self, path.removeprefix(data_api.PREFIX), query, limits)
        if path.startswith(pro_api.PREFIX + "/"):
            plan = pro_api.Plan(self.api_key, self.pro_ohlcv_allowed, self.pro_listings_allowed)
            return pro_api.answer(self, path.removeprefix(pro_api.PREFIX), query, headers, plan)
        return not_found(pro=False)


class _Server(ThreadingHTTPServer):
    """A threading server that tracks its connections so ``stop`` can close idle keep-alives."""

    # Non-daemon handler threads are joined by server_close, so none outlives stop().
    daemon_threads = False
    block_on_close = True

    def __init__(self, fake: FakeCoinMarketCap) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (timeouts, truncation tests) reset connections; that is expected.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm the body would wait for the
    # client's delayed ACK, about 40 ms on every keep-alive request.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        arrived = time.monotonic()
        fake = cast(_Server, self.server).fake
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        user_agent = self.headers.get("User-Agent")
        if user_agent is None or "Mozilla/" not in user_agent:
            html = CLOUDFLARE_PAGE.encode()
            answer = Response(403, html, content_type="text/html; charset=UTF-8")
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = fake.respond(split.path, query, headers)
        # Logged before it is sent: a client that has its answer finds its request in the log.
        fake.record(RequestRecord(arrived, "GET", split.path, query, answer.status, user_agent))
        self._send(answer)

    def _send(self, answer: Response) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        if answer.truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if answer.truncate:
            self.wfile.write(answer.body[: len(answer.body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(answer.body)

    def version_string(self) -> str:
        return "cloudflare"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet; FakeCoinMarketCap.requests is the log
