"""Target 5: the live client's request rate against the local CoinMarketCap-compatible server."""

import math
import multiprocessing
from dataclasses import dataclass
from datetime import date, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

from benchmarks.common import (
    LAST_HISTORY_DAY,
    Figure,
    TargetResult,
    Workspace,
    bench_market,
    environment,
    median,
)
from coinmarket_assets.sources import resolve_universe
from coinmarket_assets.sources.coinmarketcap.source import CoinMarketCapSource
from coinmarket_testkit.server import FakeCoinMarketCap

RATES = (5.0, 50.0)
MIN_SHARE = 0.9
WINDOW_SECONDS = 10.0
HISTORY_DAYS = 120
PAGE_DAYS = 10  # days per historical answer, so that each coin takes a dozen pages

METHOD = """\
The live source (`CoinMarketCapSource.from_env()`, i.e. the data-api client with its default
4 workers) is configured with `COINMARKET_CMC_RATE_LIMIT=R` and pointed at
`coinmarket_testkit/server.py` on loopback, run in a process of its own (so that it
does not share the client's GIL), serving the benchmark market (real price paths first). One
repetition resolves the universe from the listing and fetches 120 days of enough coins to last
about the repetition's length (10 days per answer, so 12+ pages per coin). The server records
the arrival time of every request: the sustained rate is (requests - 1) / (last arrival - first
arrival); the window figure is the most requests whose arrivals fall in any half-open 10-second
window [t, t + 10 s), t at each arrival. Sustained rate: median over repetitions; window count:
the maximum over all of them."""

LIMITS = """\
The client spaces requests with pyrate-limiter: one per 1 / R seconds up to 10/s, above that
R / 10 per 100 ms window (the window's millisecond rounding keeps it under R), with 4 workers by
default so that a slow answer does not leave the budget unused. The last percent below R is
the first request's start and the JSON decoding between requests on this 2-core machine."""


@dataclass(frozen=True)
class Fetch:
    requests: int
    seconds: float
    busiest_window: int

    @property
    def rate(self) -> float:
        return (self.requests - 1) / self.seconds


def run(ws: Workspace) -> TargetResult:
    result = TargetResult(5, "Fetching within the rate limit", method=METHOD, limits=LIMITS)
    for rate in RATES:
        fetches = [fetch_at(ws, rate, ws.sizes.fetch_seconds) for _ in range(ws.sizes.reps)]
        sustained = median([f.rate for f in fetches])
        busiest = max(f.busiest_window for f in fetches)
        allowed = math.floor(rate * WINDOW_SECONDS)
        result.figures += [
            Figure(
                f"R = {rate:g}/s: sustained request rate",
                f"{sustained:.2f}/s ({sustained / rate:.1%} of R)",
                f">= {MIN_SHARE * rate:g}/s",
                sustained >= MIN_SHARE * rate,
                sustained,
            ),
            Figure(
                f"R = {rate:g}/s: most requests in any 10 s",
                f"{busiest}",
                f"<= {allowed}",
                busiest <= allowed,
                busiest,
            ),
        ]
        result.details.append(
            f"R = {rate:g}/s: "
            + "; ".join(
                f"{f.requests} requests in {f.seconds:.1f} s, busiest 10 s {f.busiest_window}"
                for f in fetches
            )
        )
    return result


def fetch_at(ws: Workspace, rate: float, seconds: float) -> Fetch:
    """One fetch sized to take about ``seconds`` at ``rate``, as the server saw it."""
    first = LAST_HISTORY_DAY - timedelta(days=HISTORY_DAYS - 1)
    pages = math.ceil(HISTORY_DAYS / PAGE_DAYS)
    coins = max(1, math.ceil((rate * seconds - 1) / pages))
    # The server answers from its own process, so that it never competes with the client for
    # this interpreter's GIL.
    context = multiprocessing.get_context("spawn")
    client_end, server_end = context.Pipe()
    server = context.Process(
        target=serve, args=(coins, first, LAST_HISTORY_DAY, ws.real_data, server_end)
    )
    server.start()
    try:
        data_api_url, pro_api_url, tickers = client_end.recv()
        _fetch_all(data_api_url, pro_api_url, rate, tickers, first, LAST_HISTORY_DAY)
        client_end.send("done")
        times = sorted(client_end.recv())
    finally:
        server.join(timeout=30)
        if server.is_alive():
            server.kill()
    return Fetch(len(times), times[-1] - times[0], busiest_window(times, WINDOW_SECONDS))


def serve(coins: int, first: date, last: date, real_data: Path | None, conn: Connection) -> None:
    """In a child process: serve the benchmark market until told, then send arrival times."""
    market = bench_market(coins, first, last, real_data)
    with FakeCoinMarketCap(market, max_days=PAGE_DAYS) as server:
        conn.send((server.data_api_url, server.pro_api_url, market.tickers))
        conn.recv()
        conn.send([record.time for record in server.requests])


def _fetch_all(
    data_api_url: str, pro_api_url: str, rate: float, tickers: list[str], first: date, last: date
) -> None:
    """The live source as the pipeline configures it, fetching every coin's days."""
    settings = {
        "COINMARKET_CMC_BASE_URL": data_api_url,
        "COINMARKET_CMC_PRO_BASE_URL": pro_api_url,
        "COINMARKET_CMC_RATE_LIMIT": str(rate),
    }
    with environment(**settings):
        source = CoinMarketCapSource.from_env()
    coins = resolve_universe(source.listing(), tickers)
    source.checked_candles(coins, first, last)


def busiest_window(times: list[float], seconds: float) -> int:
    """The most arrivals in any window [t, t + seconds), t ranging over the sorted arrivals."""
    most, end = 0, 0
    for start, t in enumerate(times):
        while end < len(times) and times[end] < t + seconds:
            end += 1
        most = max(most, end - start)
    return most
