"""The asset graph on the live CoinMarketCap client, against the local CoinMarketCap-compatible
server over real sockets."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from dagster import build_schedule_context

from coinmarket_assets.assets import market_data
from coinmarket_assets.schedules import daily_market_schedule
from coinmarket_assets_tests.dagster_runs import (
    dump_all,
    failure_messages,
    materialize_days,
    materialize_unpartitioned,
    read_table,
)
from coinmarket_assets_tests.table_checks import assert_derived_tables_match_references
from coinmarket_testkit.server import FakeCoinMarketCap
from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, random_walk

RATE_LIMIT = 100.0


def _use_live_source(monkeypatch: pytest.MonkeyPatch, server: FakeCoinMarketCap, tickers) -> None:
    monkeypatch.setenv("COINMARKET_SOURCE", "coinmarketcap")
    monkeypatch.setenv("COINMARKET_CMC_BASE_URL", server.data_api_url)
    monkeypatch.setenv("COINMARKET_CMC_RATE_LIMIT", str(RATE_LIMIT))
    monkeypatch.setenv("COINMARKET_CMC_BACKOFF_SECONDS", "0.05")
    monkeypatch.setenv("COINMARKET_CMC_RETRY_BUDGET", "5")
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join(tickers))


@pytest.fixture
def live_server(
    market: SyntheticMarket, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeCoinMarketCap]:
    with FakeCoinMarketCap(market, max_days=60) as server:
        _use_live_source(monkeypatch, server, market.tickers)
        yield server


def _twenty_coins_three_years() -> SyntheticMarket:
    return SyntheticMarket(
        [
            SyntheticCoin(
                1000 + n, f"C{n:02d}", f"Coin {n}", random_walk(n, date(2019, 1, 1), 1096, 10.0 + n)
            )
            for n in range(20)
        ]
    )


@pytest.mark.slow
def test_three_years_of_twenty_coins_through_the_live_client(
    database_url: str, monkeypatch: pytest.MonkeyPatch
):
    market = _twenty_coins_three_years()
    with FakeCoinMarketCap(market) as server:  # the real 400-day cap per call
        _use_live_source(monkeypatch, server, market.tickers)
        materialize_unpartitioned(["currency_status"])
        materialize_days("2019-01-01", "2021-12-31")
    requests = server.requests  # after stop(): every answered request is recorded

    stored = read_table("historical_trade_data")
    expected = market.candles().sort_values(["coin_id", "trade_date"], ignore_index=True)
    pd.testing.assert_frame_equal(
        stored[expected.columns], expected, check_exact=True, check_dtype=False
    )
    assert set(stored["source"]) == {"coinmarketcap"}
    assert_derived_tables_match_references("2019-01-01", "2021-12-31")
    assert len(read_table("currency_status")) == 20

    historical = [r for r in requests if r.path.endswith("/v3.1/cryptocurrency/historical")]
    assert len(historical) == 20 * 3  # 1096 days page back past the 400-day cap
    times = sorted(r.time for r in requests)
    assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= RATE_LIMIT


def test_a_revised_candle_is_picked_up_by_the_next_daily_run(live_server: FakeCoinMarketCap):
    materialize_days("2020-01-01", "2020-07-17")
    before = read_table("historical_trade_data").set_index(["ticker", "trade_date"])
    revised_close = before.loc[("BETA", pd.Timestamp("2020-07-15")), "close"] * 1.5
    live_server.revise("BETA", "2020-07-15", close=revised_close, high=revised_close)

    tick = build_schedule_context(scheduled_execution_time=datetime(2020, 7, 19, 0, 30, tzinfo=UTC))
    request = daily_market_schedule(tick)
    tags = request.tags
    assert tags["dagster/asset_partition_range_start"] == "2020-07-15"
    assert tags["dagster/asset_partition_range_end"] == "2020-07-18"
    result = materialize_days(
        tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
    )

    after = read_table("historical_trade_data").set_index(["ticker", "trade_date"])
    assert after.loc[("BETA", pd.Timestamp("2020-07-15")), "close"] == revised_close
    trades = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "historical_trade_data"
    )
    assert trades.materialization.metadata["run_rows_revised"].value == 1
    assert_derived_tables_match_references("2020-01-01", "2020-07-18")


def test_a_bad_payload_fails_the_run_naming_coin_and_day_and_writes_nothing(
    live_server: FakeCoinMarketCap, database_url: str
):
    materialize_days("2020-03-01", "2020-03-31")
    before = dump_all(database_url)
    live_server.corrupt("GAMMA", "2020-03-05", "close", None)
    result = materialize_days("2020-03-01", "2020-03-31", raise_on_error=False)
    assert not result.success
    assert "GAMMA 2020-03-05: close is missing" in failure_messages(result)
    assert dump_all(database_url) == before


def test_a_source_that_keeps_failing_ends_the_run_clearly_and_writes_nothing(
    live_server: FakeCoinMarketCap, database_url: str
):
    materialize_days("2020-03-01", "2020-03-31")
    before = dump_all(database_url)
    live_server.fail_next(100, status=503, path="historical")
    result = materialize_days("2020-03-01", "2020-03-31", raise_on_error=False)
    assert not result.success
    message = failure_messages(result)
    assert "2020-03-01..2020-03-31" in message
    assert "retry budget spent" in message
    assert dump_all(database_url) == before


def test_a_coin_delisted_mid_backfill_fails_the_run_naming_it_and_keeps_stored_days(
    live_server: FakeCoinMarketCap, database_url: str
):
    materialize_days("2020-01-01", "2020-01-31")
    before = dump_all(database_url)
    live_server.delist_after_next("BETA")  # 169 days are three history pages per coin
    result = materialize_days("2020-02-01", "2020-07-18", raise_on_error=False)
    assert not result.success
    message = failure_messages(result)
    assert "BETA" in message and "2020-02-01..2020-07-18" in message
    # The listing and global-metrics steps (context, not candles) stored their days; no other
    # table changed.
    after = dump_all(database_url)
    assert after.pop("historical_listings") != before.pop("historical_listings")
    assert after.pop("global_metrics") != before.pop("global_metrics")
    assert after == before


def test_skip_mode_stores_the_good_rows_and_reports_the_bad_ones_in_a_check(
    live_server: FakeCoinMarketCap, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COINMARKET_ON_BAD_ROWS", "skip")
    live_server.corrupt("GAMMA", "2020-03-05", "close", "n/a")
    result = materialize_days("2020-03-01", "2020-03-10", selection=["historical_trade_data"])
    stored = read_table("historical_trade_data")
    gamma_days = set(stored.loc[stored["ticker"] == "GAMMA", "trade_date"].dt.day)
    assert gamma_days == set(range(1, 11)) - {5}
    assert len(stored) == 10 * 4 - 1
    checks = result.get_asset_check_evaluations()
    (check,) = [c for c in checks if c.check_name == "no_bad_rows"]
    assert not check.passed
    assert check.metadata["failing"].value == 1
    assert "GAMMA 2020-03-05: close is not a number ('n/a')" in check.metadata["problems"].value


def test_a_refetch_that_leaves_out_a_day_keeps_the_stored_candle_and_reports_it(
    live_server: FakeCoinMarketCap,
):
    materialize_days("2020-03-01", "2020-03-10", selection=["historical_trade_data"])
    before = read_table("historical_trade_data")
    live_server.drop_day("BETA", "2020-03-04")
    result = materialize_days("2020-03-01", "2020-03-10", selection=["historical_trade_data"])
    pd.testing.assert_frame_equal(
        read_table("historical_trade_data").drop(columns="fetched_at"),
        before.drop(columns="fetched_at"),
    )
    (event,) = result.get_asset_materialization_events()[:1]
    assert event.materialization.metadata["run_rows_not_refetched"].value == 1


def test_an_unpublished_newest_day_retries_the_step_then_fails_writing_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(market_data, "NOT_PUBLISHED_WAIT_SECONDS", 0)
    monkeypatch.setattr(market_data, "NOT_PUBLISHED_RETRIES", 2)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    first = yesterday - timedelta(days=5)
    recent = SyntheticMarket([SyntheticCoin(1, "BTC", "Bitcoin", random_walk(1, first, 6, 1.0))])
    with FakeCoinMarketCap(recent) as server:
        _use_live_source(monkeypatch, server, ["BTC"])
        server.unpublished_from(yesterday)
        result = materialize_days(
            first.isoformat(),
            yesterday.isoformat(),
            ["historical_trade_data"],
            raise_on_error=False,
        )
    assert not result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 2
    assert all(not dump for dump in dump_all(database_url).values())
