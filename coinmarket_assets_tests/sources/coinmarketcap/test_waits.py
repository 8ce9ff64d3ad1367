"""No wait of the live client escapes its retry budget or outlives the fetch it belongs to:
``Retry-After`` in every form, the budget's seconds, and workers stopped by a failure or an
interrupt, against the local CoinMarketCap over real sockets."""

import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import pytest

from coinmarket_assets.sources.base import SourceError, resolve_universe
from coinmarket_assets.sources.coinmarketcap.source import CoinMarketCapSource
from coinmarket_assets_tests.sources.coinmarketcap.conftest import fast_settings
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import SyntheticMarket

FIRST, LAST = date(2020, 1, 1), date(2020, 7, 18)
ALPHA, BETA = "id=101&", "id=102&"  # the history requests of one coin


def _fetch(source: CoinMarketCapSource, tickers: list[str], first: date = FIRST) -> float:
    """Seconds taken to fetch the tickers' candles of first..LAST (the listing excluded)."""
    coins = resolve_universe(source.listing(), tickers)
    started = time.monotonic()
    source.checked_candles(coins, first, LAST)
    return time.monotonic() - started


def _failure(
    source: CoinMarketCapSource, tickers: list[str], error: type[BaseException] = SourceError
) -> tuple[str, float]:
    """The message of the fetch's failure and the ``time.monotonic()`` at which it ended."""
    coins = resolve_universe(source.listing(), tickers)
    with pytest.raises(error) as failure:
        source.checked_candles(coins, FIRST, LAST)
    return str(failure.value), time.monotonic()


def _in(delta: timedelta) -> str:
    """An HTTP date ``delta`` from now."""
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "asked"),
    [
        ("20", "20 s"),
        ("inf", "inf s"),
        ("1e400", "inf s"),  # too large for a float
        ("1e308", r"1e\+308 s"),
        (timedelta(hours=2), r"7[12]\d\d(\.\d)? s"),
        ("Fri, 31 Dec 9999 23:59:59 GMT", r"2\.5\de\+11 s"),
    ],
    ids=["seconds", "inf", "overflowing", "huge", "future-date", "far-future-date"],
)
def test_a_retry_after_beyond_the_budget_fails_at_once_naming_coin_days_and_wait(
    fake_cmc: FakeCoinMarketCap,
    market: SyntheticMarket,
    retry_after: str | timedelta,
    asked: str,
):
    header = _in(retry_after) if isinstance(retry_after, timedelta) else retry_after
    source = CoinMarketCapSource(fast_settings(fake_cmc, retry_budget_seconds=5, max_workers=4))
    fake_cmc.fail_next(1, status=429, retry_after=header, path=BETA)
    message, ended = _failure(source, market.tickers)
    expected = (
        rf"BETA \(id 102\), 2020-01-01\.\.2020-07-18: the server asked to wait {asked} before "
        rf"retrying, more than the 5 s left of the retry budget \(5 s of waiting per step\): "
        rf".*HTTP 429 \(Retry-After: {re.escape(header)}\)"
    )
    assert re.fullmatch(expected, message), message
    refused = next(r for r in fake_cmc.requests if r.status == 429)
    assert ended - refused.time < 5  # no worker sat the pause (20 s or more) out
    assert source.client.seconds_waited == 0


def test_a_date_without_zone_is_utc_whatever_the_local_time_zone(
    fake_cmc: FakeCoinMarketCap, monkeypatch: pytest.MonkeyPatch
):
    source = CoinMarketCapSource(fast_settings(fake_cmc, retry_budget_seconds=30))
    in_two_seconds = datetime.now(UTC) + timedelta(seconds=2)
    fake_cmc.fail_next(1, retry_after=f"{in_two_seconds:%a, %d %b %Y %H:%M:%S} -0000", path=BETA)
    monkeypatch.setenv("TZ", "America/Adak")  # UTC-10: read as local time, 10 h from now
    time.tzset()
    try:
        assert _fetch(source, ["BETA"]) < 5
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert 0.5 < source.client.seconds_waited < 5


@pytest.mark.parametrize(
    "retry_after",
    ["-5", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "nan", ""],
    ids=["negative", "past-date", "garbage", "nan", "empty"],
)
def test_a_retry_after_asking_for_no_pause_is_retried_after_the_backoff(
    fake_cmc: FakeCoinMarketCap, retry_after: str
):
    source = CoinMarketCapSource(fast_settings(fake_cmc, retry_budget_seconds=5))
    fake_cmc.fail_next(2, status=503, retry_after=retry_after, path=BETA)
    assert _fetch(source, ["BETA"]) < 4
    assert source.client.retries == 2
    assert source.client.seconds_waited < 1  # backoffs of 0.05 s and 0.1 s, with jitter


def test_waits_side_by_side_count_once_against_the_budget(
    fake_cmc: FakeCoinMarketCap, market: SyntheticMarket
):
    source = CoinMarketCapSource(fast_settings(fake_cmc, retry_budget_seconds=2.5))
    source.listing()
    fake_cmc.slow_next(4, 0.3, path="historical")  # the four workers' first requests overlap
    fake_cmc.fail_next(4, status=429, retry_after=1.5, path="historical")
    _fetch(source, market.tickers)
    assert source.client.retries == 4
    # Four workers waiting 1.5 s at the same time stall the step for 1.5 s, not 6 s.
    assert 1.5 <= source.client.seconds_waited < 2.5


def _busy_in_backoff(server: FakeCoinMarketCap) -> None:
    server.fail_next(3, status=503, path="historical")


def _busy_in_a_pause(server: FakeCoinMarketCap) -> None:
    server.fail_next(1, status=429, retry_after=3, path=ALPHA)


@pytest.mark.parametrize(
    ("others_wait", "rate_limit"),
    [(_busy_in_backoff, 200.0), (_busy_in_a_pause, 200.0), (None, 0.5)],
    ids=["backoff", "retry-after-pause", "rate-limit"],  # 0.5/s: the workers queue for seconds
)
def test_a_failing_fetch_stops_the_other_workers_waits_at_once(
    fake_cmc: FakeCoinMarketCap,
    market: SyntheticMarket,
    others_wait: Callable[[FakeCoinMarketCap], None] | None,
    rate_limit: float,
):
    settings = fast_settings(
        fake_cmc, backoff_seconds=10, max_backoff_seconds=20, rate_limit=rate_limit
    )
    source = CoinMarketCapSource(settings)
    source.listing()
    # The first history request fails for good; in the fault cases it is BETA's, answered
    # once the others wait.
    fatal = "historical" if others_wait is None else BETA
    fake_cmc.slow_next(1, 0.5, path=fatal)
    fake_cmc.fail_next(1, status=404, path=fatal)
    if others_wait is not None:
        others_wait(fake_cmc)
    message, ended = _failure(source, market.tickers)
    assert re.match(r"\w+ \(id 10\d\), 2020-01-01\.\.2020-07-18: .*HTTP 404", message), message
    answered = fake_cmc.requests
    assert answered[-1].status == 404  # no request after it, and none retried
    # The 404 is answered 0.5 s after it arrived; the others' waits were 3 s or more.
    assert ended - answered[-1].time < 2
    assert _fetch(source, ["BETA"], first=LAST) < 5  # the client works again


def test_an_interrupt_of_the_caller_stops_every_worker_at_once(
    fake_cmc: FakeCoinMarketCap, market: SyntheticMarket
):
    source = CoinMarketCapSource(fast_settings(fake_cmc))
    source.listing()
    fake_cmc.fail_next(1, status=429, retry_after=30, path="historical")
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def interrupt_during_the_pause() -> None:
        while not any(r.status == 429 for r in fake_cmc.requests):
            time.sleep(0.01)
        time.sleep(0.3)
        # As Dagster interrupts a step whose run is terminated: SIGINT to its main thread.
        signal.pthread_kill(main_thread, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_during_the_pause)
    interrupter.start()
    try:
        _, ended = _failure(source, market.tickers, KeyboardInterrupt)
    finally:
        interrupter.join()
    refused = next(r for r in fake_cmc.requests if r.status == 429)
    assert ended - refused.time < 5  # the pause asked for 30 s
