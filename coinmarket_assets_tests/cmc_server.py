"""A CoinMarketCap-compatible HTTP server on 127.0.0.1 for tests of the live client.

It serves a ``SyntheticMarket`` through the keyless data-api (``/data-api``) and the Pro API
(``/pro``) in their wire shapes, and can be told to misbehave the way the real service does:
HTTP errors with ``Retry-After`` (seconds, dates or garbage), error payloads inside HTTP 200,
slow, truncated or malformed answers, duplicate symbols, ranks that shift between listing pages,
missing, duplicated, revised, corrupt or unpublished days, quotes outside the requested range and
the cap on days per historical call.

Choices where the real API is undocumented:

- data-api parameter errors (unknown or invalid ``id``, bad ``timeEnd``, ...) answer HTTP 200
  with ``status.error_code`` "400", ``error_message`` 'Invalid value for "id"' and ``data: {}``.
- a data-api historical answer without candles keeps ``data.timeEnd`` at the requested timeEnd.
- the Pro API answers bad parameters with HTTP 400 and the integer ``error_code`` 400.
- ``maxSupply`` is null (absent from the data-api listing) for coins with an even id.
"""

import contextlib
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

from coinmarket_assets_tests.synthetic import FIELDS, SyntheticMarket

USD_CONVERT_ID = "2781"
DATA_API_PREFIX = "/data-api"
PRO_API_PREFIX = "/pro"
PRO_KEY_HEADER = "X-CMC_PRO_API_KEY"
LISTING_PAGES = "/cryptocurrency/listing"  # in the paths of both APIs' paged listings
CLOUDFLARE_PAGE = (
    "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
    "<body><h1>Sorry, you have been blocked</h1></body></html>"
)
MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)
API_FIELDS = {"open": "open", "high": "high", "low": "low", "close": "close"}
Json = dict[str, Any]
Day = date | datetime | str
T = TypeVar("T")


class Missing(Enum):
    """Marker for ``corrupt``: leave the field out of the quote altogether."""

    MISSING = "missing"


MISSING = Missing.MISSING


@dataclass(frozen=True)
class RequestRecord:
    """One answered request; ``time`` is ``time.monotonic()`` when it arrived."""

    time: float
    method: str
    path: str
    query: dict[str, str]
    status: int
    user_agent: str | None


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    truncate: bool = False


@dataclass
class _Fault:
    remaining: int
    path: str
    seconds: float = 0.0
    apply: Callable[[_Response, bool], _Response] | None = None


@dataclass
class _Coin:
    coin_id: int
    ticker: str
    name: str
    slug: str
    candles: dict[date, dict[str, Any]]
    market_cap: float | None = None


@dataclass(frozen=True)
class _Summary:
    """A coin's listing figures, taken from its newest published candle."""

    price: float
    volume: float
    market_cap: float
    high: float
    low: float
    ath: float
    atl: float
    change_24h: float
    change_7d: float
    supply: float
    first_day: date | None
    last_day: date | None


class _BadParameter(ValueError):
    """A query parameter the API would reject; the message names it."""

    def __init__(self, name: str) -> None:
        super().__init__(f'Invalid value for "{name}"')


class FakeCoinMarketCap:
    """The data-api and Pro API over loopback, serving ``market`` with injectable faults.

    The market's candles are copied at construction; change them with the data faults.

    ``max_days`` caps the candles of one data-api historical answer (the real API: 400).
    ``honour_time_start`` (default False, like the real API) makes that endpoint drop candles
    whose day ends before ``timeStart``.
    """

    def __init__(
        self,
        market: SyntheticMarket,
        *,
        api_key: str | None = None,
        pro_ohlcv_allowed: bool = False,
        max_days: int = 400,
    ) -> None:
        self.api_key = api_key
        self.pro_ohlcv_allowed = pro_ohlcv_allowed
        self.max_days = max_days
        self.honour_time_start = False
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._coins: dict[int, _Coin] = {}
        self._slow: list[_Fault] = []
        self._broken: list[_Fault] = []
        self._records: list[RequestRecord] = []
        self._duplicates: set[tuple[int, date]] = set()
        self._out_of_range = False
        self._unpublished_from: date | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for coin in market.coins:
            self.add_coin(coin.coin_id, coin.ticker, coin.name, coin.slug, coin.candles)

    # -- lifecycle --------------------------------------------------------------------------

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
        return self.base_url + DATA_API_PREFIX

    @property
    def pro_api_url(self) -> str:
        return self.base_url + PRO_API_PREFIX

    # -- request log --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the answered requests, in the order their answers were sent."""
        with self._lock:
            return list(self._records)

    def reset_requests(self) -> None:
        with self._lock:
            self._records.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    # -- transport faults ---------------------------------------------------------------------
    # Each applies to the next ``n`` requests whose target (path and query string) contains
    # ``path``, then stops. Requests refused for their User-Agent do not consume faults.

    def fail_next(
        self, n: int, status: int = 429, retry_after: float | str | None = None, path: str = ""
    ) -> None:
        """Answer HTTP ``status`` with a JSON status body, and ``Retry-After`` when given.

        A number is sent as an integer when whole, else as a decimal (e.g. "0.2") so tests can
        stay fast; clients should parse it as a float. A string is sent as it is: an HTTP date,
        "inf", "-5", "soon", ...
        """
        headers = () if retry_after is None else (("Retry-After", _retry_after(retry_after)),)

        def fail(_: _Response, pro: bool) -> _Response:
            message = _phrase(status)
            return _json_response(status, {"status": _status(str(status), message, pro)}, headers)

        self._add(self._broken, _Fault(n, path, apply=fail))

    def error_payload_next(
        self, n: int, code: str = "500", message: str = "The system is busy", path: str = ""
    ) -> None:
        """Answer HTTP 200 with only a ``status`` whose ``error_code`` is ``code``."""

        def error(_: _Response, pro: bool) -> _Response:
            return _json_response(200, {"status": _status(code, message, pro)})

        self._add(self._broken, _Fault(n, path, apply=error))

    def slow_next(self, n: int, seconds: float, path: str = "") -> None:
        """Wait ``seconds`` before answering (combines with the other faults)."""
        self._add(self._slow, _Fault(n, path, seconds=seconds))

    def truncate_next(self, n: int, path: str = "") -> None:
        """Announce the full Content-Length, send half the body, then close the connection."""
        self._add(self._broken, _Fault(n, path, apply=lambda r, _: replace(r, truncate=True)))

    def malformed_next(self, n: int, path: str = "") -> None:
        """Answer HTTP 200 with an HTML page instead of JSON."""
        page = MAINTENANCE_PAGE.encode()
        html = _Response(200, page, content_type="text/html; charset=utf-8")
        self._add(self._broken, _Fault(n, path, apply=lambda _r, _p: html))

    def _add(self, faults: list[_Fault], fault: _Fault) -> None:
        if fault.remaining > 0:
            with self._lock:
                faults.append(fault)

    def _take(self, faults: list[_Fault], target: str) -> _Fault | None:
        with self._lock:
            fault = next((f for f in faults if f.path in target), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    faults.remove(fault)
            return fault

    # -- data faults ------------------------------------------------------------------------
    # ``ticker`` names the first coin with that symbol, or is a coin id.

    def add_coin(
        self,
        coin_id: int,
        ticker: str,
        name: str,
        slug: str,
        candles: pd.DataFrame | None = None,
        market_cap: float | None = None,
    ) -> None:
        """List another coin (e.g. a second one with an existing symbol).

        ``market_cap``, when given, replaces the newest candle's in the listings and ranking.
        """
        rows = {} if candles is None else _candle_rows(candles)
        with self._lock:
            if coin_id in self._coins:
                raise ValueError(f"coin id {coin_id} is already listed")
            self._coins[coin_id] = _Coin(coin_id, ticker, name, slug, rows, market_cap)

    def delist(self, ticker: str | int) -> None:
        """Stop knowing a coin: it leaves the listings and its history answers
        'Invalid value for "id"', as for a coin CoinMarketCap removed."""
        with self._lock:
            del self._coins[self._coin(ticker).coin_id]

    def delist_after_next(self, ticker: str | int) -> None:
        """Delist the coin right after its next history answer (it disappears mid-backfill)."""
        coin_id = self._coin(ticker).coin_id

        def answer_then_delist(answer: _Response, _pro: bool) -> _Response:
            self.delist(coin_id)
            return answer

        self._add(self._broken, _Fault(1, f"id={coin_id}&", apply=answer_then_delist))

    def rerank_after_next_listing_page(self, ticker: str | int, market_cap: float) -> None:
        """Give the coin ``market_cap`` right after the next listing page (data-api listing or
        Pro latest listings), as ranks shift while a client pages through them: a coin that
        falls past the page boundary is listed twice, at two ranks, and one that rises past it
        is missed."""
        coin_id = self._coin(ticker).coin_id

        def answer_then_rerank(answer: _Response, _pro: bool) -> _Response:
            with self._lock:
                self._coins[coin_id].market_cap = market_cap
            return answer

        self._add(self._broken, _Fault(1, LISTING_PAGES, apply=answer_then_rerank))

    def drop_day(self, ticker: str | int, day: Day) -> None:
        """Remove a candle: it is missing from every answer from now on."""
        with self._lock:
            self._coin(ticker).candles.pop(_day(day), None)

    def duplicate_day(self, ticker: str | int, day: Day) -> None:
        """Send that candle twice in every historical answer that contains it."""
        with self._lock:
            self._duplicates.add((self._coin(ticker).coin_id, _day(day)))

    def add_out_of_range_quotes(self, flag: bool = True) -> None:
        """Also send the (up to two) candles that follow the requested range."""
        with self._lock:
            self._out_of_range = flag

    def revise(self, ticker: str | int, day: Day, **fields: float) -> None:
        """Rewrite history: change a candle's fields (names as in ``FIELDS``) from now on."""
        with self._lock:
            candle = self._candle(ticker, day)
            for name, value in fields.items():
                candle[_field(name)] = value

    def corrupt(self, ticker: str | int, day: Day, field: str, value: Any) -> None:
        """Send ``field`` of that candle as ``value`` (None, "abc", -1, ...; ``MISSING`` omits
        it); listings treat a non-numeric value as 0."""
        with self._lock:
            self._candle(ticker, day)[_field(field)] = value

    def unpublished_from(self, day: Day | None) -> None:
        """Withhold every candle on or after ``day`` (None publishes everything again)."""
        with self._lock:
            self._unpublished_from = None if day is None else _day(day)

    def _coin(self, ticker: str | int) -> _Coin:
        if isinstance(ticker, int):
            return self._coins[ticker]
        found = next((c for c in self._coins.values() if c.ticker == ticker), None)
        if found is None:
            raise KeyError(f"no coin with ticker {ticker!r}")
        return found

    def _candle(self, ticker: str | int, day: Day) -> dict[str, Any]:
        coin = self._coin(ticker)
        wanted = _day(day)
        if wanted not in coin.candles:
            raise KeyError(f"{coin.ticker} has no candle on {wanted}")
        return coin.candles[wanted]

    # -- answering ------------------------------------------------------------------------

    def _respond(self, path: str, query: dict[str, str], headers: dict[str, str]) -> _Response:
        """The answer to an accepted request, faults included."""
        target = path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
        slow = self._take(self._slow, target)
        if slow is not None:
            self._stopping.wait(slow.seconds)
        pro = path.startswith(PRO_API_PREFIX + "/")
        broken = self._take(self._broken, target)
        with self._lock:
            answer = self._route(path, query, headers)
        return answer if broken is None or broken.apply is None else broken.apply(answer, pro)

    def _route(self, path: str, query: dict[str, str], headers: dict[str, str]) -> _Response:
        if path.startswith(DATA_API_PREFIX + "/"):
            return self._data_api(path.removeprefix(DATA_API_PREFIX), query)
        if path.startswith(PRO_API_PREFIX + "/"):
            return self._pro_api(path.removeprefix(PRO_API_PREFIX), query, headers)
        return _json_response(404, {"status": _status("404", "Not Found", False)})

    def _data_api(self, path: str, query: dict[str, str]) -> _Response:
        handlers = {
            "/v3/cryptocurrency/listing": self._data_listing,
            "/v3.1/cryptocurrency/historical": self._data_historical,
        }
        handler = handlers.get(path)
        if handler is None:
            return _json_response(404, {"status": _status("404", "Not Found", False)})
        try:
            return _json_response(200, {"data": handler(query), "status": _status()})
        except _BadParameter as error:
            return _json_response(200, {"data": {}, "status": _status("400", str(error))})

    def _pro_api(self, path: str, query: dict[str, str], headers: dict[str, str]) -> _Response:
        if self.api_key is None or headers.get(PRO_KEY_HEADER.lower()) != self.api_key:
            status = _status("1001", "This API Key is invalid.", True)
            return _json_response(401, {"status": status})
        if path == "/v2/cryptocurrency/ohlcv/historical" and not self.pro_ohlcv_allowed:
            message = "Your API Key subscription plan doesn't support this endpoint."
            return _json_response(403, {"status": _status("1006", message, True)})
        handlers: dict[str, Callable[[dict[str, str]], Any]] = {
            "/v1/cryptocurrency/map": self._pro_map,
            "/v1/cryptocurrency/listings/latest": self._pro_listings,
            "/v2/cryptocurrency/ohlcv/historical": self._pro_ohlcv,
        }
        handler = handlers.get(path)
        if handler is None:
            return _json_response(404, {"status": _status("404", "Not Found", True)})
        try:
            data = handler(query)
        except _BadParameter as error:
            return _json_response(400, {"status": _status("400", str(error), True)})
        return _json_response(200, {"status": _status("0", None, True), "data": data})

    # -- data-api endpoints ---------------------------------------------------------------

    def _data_listing(self, query: dict[str, str]) -> Json:
        ranked = self._ranked()
        page = _page(ranked, query)
        entries = [_data_listing_entry(coin, rank, summary) for coin, rank, summary in page]
        return {"cryptoCurrencyList": entries, "totalCount": str(len(ranked))}

    def _data_historical(self, query: dict[str, str]) -> Json:
        coin = self._requested_coin(query)
        if query.get("interval", "daily") not in ("daily", "1d"):
            raise _BadParameter("interval")
        time_end = _int_param(query, "timeEnd", int(time.time()))
        days = self._historical_days(coin, _utc_day(time_end), self._time_start_day(query))
        convert_id = query.get("convertId", USD_CONVERT_ID)
        cursor = _unix(days[0]) - 1 if days else time_end
        return {
            "id": coin.coin_id,
            "name": coin.name,
            "symbol": coin.ticker,
            "timeEnd": str(cursor),
            "quotes": [_data_quote(day, coin.candles[day], convert_id) for day in days],
        }

    def _time_start_day(self, query: dict[str, str]) -> date | None:
        if not self.honour_time_start or "timeStart" not in query:
            return None
        return _utc_day(_int_param(query, "timeStart", 0))

    def _historical_days(self, coin: _Coin, last: date, first: date | None) -> list[date]:
        """The served days: the newest ``max_days`` up to ``last``, plus injected faults."""
        published = self._published_days(coin)
        days = [d for d in published if d <= last and (first is None or d >= first)]
        return self._with_faults(coin, published, days[-self.max_days :], last)

    # -- Pro endpoints --------------------------------------------------------------------

    def _pro_map(self, query: dict[str, str]) -> list[Json]:
        symbols = {s for s in query.get("symbol", "").split(",") if s}
        entries = [
            _pro_map_entry(coin, rank, summary)
            for coin, rank, summary in sorted(self._ranked(), key=lambda e: e[0].coin_id)
            if not symbols or coin.ticker in symbols
        ]
        return _page(entries, query)

    def _pro_listings(self, query: dict[str, str]) -> list[Json]:
        if query.get("convert", "USD") != "USD":
            raise _BadParameter("convert")
        page = _page(self._ranked(), query)
        return [_pro_listing_entry(coin, rank, summary) for coin, rank, summary in page]

    def _pro_ohlcv(self, query: dict[str, str]) -> Json:
        coin = self._requested_coin(query)
        start = _time_param(query, "time_start")
        end = _time_param(query, "time_end") or int(time.time())
        published = self._published_days(coin)
        days = [d for d in published if (start is None or _unix(d) > start) and _unix(d) <= end]
        days = self._with_faults(coin, published, days, _utc_day(end))
        quotes = [_pro_quote(day, coin.candles[day]) for day in days]
        return {"id": coin.coin_id, "name": coin.name, "symbol": coin.ticker, "quotes": quotes}

    # -- shared data helpers ----------------------------------------------------------------

    def _requested_coin(self, query: dict[str, str]) -> _Coin:
        coin = self._coins.get(_int_param(query, "id", -1))
        if coin is None:
            raise _BadParameter("id")
        return coin

    def _published_days(self, coin: _Coin) -> list[date]:
        cutoff = self._unpublished_from
        return sorted(d for d in coin.candles if cutoff is None or d < cutoff)

    def _with_faults(
        self, coin: _Coin, published: list[date], days: list[date], last: date
    ) -> list[date]:
        """``days`` with duplicated days repeated and, when enabled, days after ``last``."""
        if self._out_of_range:
            days = days + [d for d in published if d > last][:2]
        return [d for day in days for d in _repeat(day, (coin.coin_id, day) in self._duplicates)]

    def _ranked(self) -> list[tuple[_Coin, int, _Summary]]:
        """Every coin with its 1-based rank by market cap (ties by id) and listing figures."""
        summaries = [(coin, self._summary(coin)) for coin in self._coins.values()]
        summaries.sort(key=lambda e: (-e[1].market_cap, e[0].coin_id))
        return [(coin, rank, summary) for rank, (coin, summary) in enumerate(summaries, 1)]

    def _summary(self, coin: _Coin) -> _Summary:
        days = self._published_days(coin)
        candles = [coin.candles[d] for d in days]
        newest = candles[-1] if candles else {}
        close = _number(newest.get("close"))
        market_cap = coin.market_cap if coin.market_cap is not None else newest.get("market_cap")
        return _Summary(
            price=close,
            volume=_number(newest.get("volume")),
            market_cap=_number(market_cap),
            high=_number(newest.get("high")),
            low=_number(newest.get("low")),
            ath=max((_number(c.get("high")) for c in candles), default=0.0),
            atl=min((_number(c.get("low")) for c in candles), default=0.0),
            change_24h=_change(candles, 1),
            change_7d=_change(candles, 7),
            supply=_supply(close, _number(market_cap)),
            first_day=days[0] if days else None,
            last_day=days[-1] if days else None,
        )


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

    def do_GET(self) -> None:
        arrived = time.monotonic()
        fake = cast(_Server, self.server).fake
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        user_agent = self.headers.get("User-Agent")
        if user_agent is None or "Mozilla/" not in user_agent:
            html = CLOUDFLARE_PAGE.encode()
            answer = _Response(403, html, content_type="text/html; charset=UTF-8")
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = fake._respond(split.path, query, headers)
        self._send(answer)
        record = RequestRecord(arrived, "GET", split.path, query, answer.status, user_agent)
        fake._record(record)

    def _send(self, answer: _Response) -> None:
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


# -- wire formats ---------------------------------------------------------------------------


def _status(code: str = "0", message: str | None = "SUCCESS", pro: bool = False) -> Json:
    """A ``status`` object: string codes in the data-api, integer codes in the Pro API."""
    now = _iso_time(datetime.now(UTC))
    if pro:
        ok = code == "0"
        return {
            "timestamp": now,
            "error_code": int(code) if code.isdigit() else code,
            "error_message": None if ok else message,
            "elapsed": 1,
            "credit_count": 1 if ok else 0,
            "notice": None,
        }
    return {
        "timestamp": now,
        "error_code": code,
        "error_message": message,
        "elapsed": "1",
        "credit_count": 0,
    }


def _json_response(
    status: int, payload: Json, headers: tuple[tuple[str, str], ...] = ()
) -> _Response:
    return _Response(status, json.dumps(payload).encode(), headers=headers)


def _data_listing_entry(coin: _Coin, rank: int, s: _Summary) -> Json:
    updated = _close_iso(s.last_day)
    entry: Json = {
        "id": coin.coin_id,
        "name": coin.name,
        "symbol": coin.ticker,
        "slug": coin.slug,
        "cmcRank": rank,
        "marketPairCount": 10 + coin.coin_id % 90,
        "circulatingSupply": s.supply,
        "selfReportedCirculatingSupply": 0,
        "totalSupply": s.supply,
        "maxSupply": _max_supply(coin, s),
        "ath": s.ath,
        "atl": s.atl,
        "high24h": s.high,
        "low24h": s.low,
        "isActive": 1,
        "lastUpdated": updated,
        "dateAdded": _open_iso(s.first_day),
        "quotes": [_data_listing_quote(s, updated)],
    }
    if entry["maxSupply"] is None:
        del entry["maxSupply"]  # the data-api leaves null supplies out
    return entry


def _data_listing_quote(s: _Summary, updated: str) -> Json:
    return {
        "name": "USD",
        "price": s.price,
        "volume24h": s.volume,
        "marketCap": s.market_cap,
        "percentChange1h": 0.0,
        "percentChange24h": s.change_24h,
        "percentChange7d": s.change_7d,
        "lastUpdated": updated,
        "fullyDilluttedMarketCap": s.market_cap,
        "dominance": 0.0,
        "turnover": s.volume / s.market_cap if s.market_cap else 0.0,
    }


def _data_quote(day: date, candle: dict[str, Any], convert_id: str) -> Json:
    values = {"name": convert_id, **_present(candle, API_FIELDS)}
    values |= _present(candle, {"volume": "volume", "market_cap": "marketCap"})
    close, market_cap = candle.get("close"), candle.get("market_cap")
    values["circulatingSupply"] = _supply(_number(close), _number(market_cap))
    values["timestamp"] = _close_iso(day)
    return {
        "timeOpen": _open_iso(day),
        "timeClose": _close_iso(day),
        "timeHigh": _at(day, 15),
        "timeLow": _at(day, 6),
        "quote": values,
    }


def _pro_quote(day: date, candle: dict[str, Any]) -> Json:
    usd = _present(candle, {**API_FIELDS, "volume": "volume", "market_cap": "market_cap"})
    usd["timestamp"] = _close_iso(day)
    return {
        "time_open": _open_iso(day),
        "time_close": _close_iso(day),
        "time_high": _at(day, 15),
        "time_low": _at(day, 6),
        "quote": {"USD": usd},
    }


def _pro_map_entry(coin: _Coin, rank: int, s: _Summary) -> Json:
    return {
        "id": coin.coin_id,
        "rank": rank,
        "name": coin.name,
        "symbol": coin.ticker,
        "slug": coin.slug,
        "is_active": 1,
        "first_historical_data": _open_iso(s.first_day),
        "last_historical_data": _close_iso(s.last_day),
        "platform": None,
    }


def _pro_listing_entry(coin: _Coin, rank: int, s: _Summary) -> Json:
    updated = _close_iso(s.last_day)
    return {
        "id": coin.coin_id,
        "name": coin.name,
        "symbol": coin.ticker,
        "slug": coin.slug,
        "cmc_rank": rank,
        "num_market_pairs": 10 + coin.coin_id % 90,
        "circulating_supply": s.supply,
        "total_supply": s.supply,
        "max_supply": _max_supply(coin, s),
        "last_updated": updated,
        "date_added": _open_iso(s.first_day),
        "quote": {
            "USD": {
                "price": s.price,
                "volume_24h": s.volume,
                "market_cap": s.market_cap,
                "percent_change_24h": s.change_24h,
                "last_updated": updated,
            }
        },
    }


def _present(candle: dict[str, Any], names: dict[str, str]) -> Json:
    """The candle's fields under their API names, leaving out ``MISSING`` ones."""
    return {api: candle.get(f) for f, api in names.items() if candle.get(f) is not MISSING}


def _max_supply(coin: _Coin, s: _Summary) -> float | None:
    return None if coin.coin_id % 2 == 0 else 2 * s.supply


# -- parameters, numbers and times ----------------------------------------------------------


def _page(items: list[T], query: dict[str, str]) -> list[T]:
    """The 1-based ``start``/``limit`` page of ``items``."""
    start = _int_param(query, "start", 1)
    limit = _int_param(query, "limit", 100)
    if start < 1:
        raise _BadParameter("start")
    if limit < 1:
        raise _BadParameter("limit")
    return items[start - 1 : start - 1 + limit]


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    if name not in query:
        return default
    try:
        return int(float(query[name]))
    except ValueError:
        raise _BadParameter(name) from None


def _time_param(query: dict[str, str], name: str) -> int | None:
    """Unix seconds of an ISO date/datetime or unix-seconds parameter (naive means UTC)."""
    value = query.get(name)
    if not value:
        return None
    try:
        return int(float(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _BadParameter(name) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _number(value: Any) -> float:
    """``value`` as a finite float, 0.0 for anything corrupt."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


def _supply(close: float, market_cap: float) -> float:
    return float(round(market_cap / close)) if close > 0 else 0.0


def _change(candles: list[dict[str, Any]], back: int) -> float:
    """Percent change of the newest close against the close ``back`` candles earlier."""
    if len(candles) <= back:
        return 0.0
    then, now = _number(candles[-1 - back].get("close")), _number(candles[-1].get("close"))
    return (now / then - 1) * 100 if then else 0.0


def _repeat(day: date, twice: bool) -> Iterator[date]:
    yield day
    if twice:
        yield day


def _candle_rows(candles: pd.DataFrame) -> dict[date, dict[str, Any]]:
    return {
        pd.Timestamp(row["date"]).date(): {f: float(row[f]) for f in FIELDS}
        for row in candles.to_dict("records")
    }


def _field(name: str) -> str:
    if name not in FIELDS:
        raise ValueError(f"unknown candle field {name!r}; expected one of {FIELDS}")
    return name


def _day(day: Day) -> date:
    if isinstance(day, datetime):
        return day.date()
    return day if isinstance(day, date) else date.fromisoformat(day)


def _utc_day(unix_seconds: int) -> date:
    return datetime.fromtimestamp(unix_seconds, UTC).date()


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _iso_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _at(day: date, hour: int) -> str:
    return f"{day:%Y-%m-%d}T{hour:02d}:00:00.000Z"


def _open_iso(day: date | None) -> str:
    return _at(day or datetime.now(UTC).date(), 0)


def _close_iso(day: date | None) -> str:
    return f"{day or datetime.now(UTC).date():%Y-%m-%d}T23:59:59.999Z"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
