"""The derived steps read and write in batches of whole coins (and the rankings of whole days):
the stored rows are the same, byte for byte, whatever the batch size; with ``top:N`` the
rankings rank only each day's members, checked against a plain-Python reference."""

import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from dagster import DagsterInstance, materialize

from coinmarket_assets.definitions import defs
from coinmarket_assets.resources import PipelineSettingsResource
from coinmarket_assets.schedules import partition_range_tags
from coinmarket_assets.storage.database import DATABASE_URL_ENV
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.dagster_runs import dump_table, materialize_days
from coinmarket_testkit.synthetic import SyntheticCoin, SyntheticMarket, default_market, random_walk

FIRST, LAST = "2020-01-01", "2020-07-18"  # the candles
RUN_FIRST = "2020-06-09"  # the derived runs: 40 days, whose lookback reaches back to FIRST
DERIVED = ["historical_rolling", "period_returns", "top_ranking", "bottom_ranking"]
EXTRA_COINS = 10  # with the default market's five: 15 coins, so 7 splits them 7, 7, 1
TOP_N = 4


def _market() -> list[SyntheticCoin]:
    coins = default_market().coins
    for index in range(EXTRA_COINS):
        # Late listings at different days, so batches hold coins of different spans.
        first = date(2020, 1, 1) + pd.Timedelta(days=7 * index)
        candles = random_walk(100 + index, first, 200 - 7 * index, 10.0 ** (index % 5 - 2))
        coins.append(SyntheticCoin(201 + index, f"EXTRA{index}", f"Extra {index}", candles))
    return coins


@pytest.fixture(scope="module")
def history(server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Candles of 15 coins over 200 days; derived tables of the last 40, in one batch."""
    market = SyntheticMarket(_market())
    source = tmp_path_factory.mktemp("batches") / "cmc"
    market.write_csv(source)
    with module_database(server_url, "batches") as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATABASE_URL_ENV, url)
        patch.setenv("COINMARKET_SOURCE", f"csv:{source}")
        patch.setenv("COINMARKET_TICKERS", ",".join(market.tickers))
        patch.setenv("COINMARKET_BATCH_COINS", "100000")
        materialize_days(FIRST, LAST, ["historical_trade_data"])
        materialize_days(RUN_FIRST, LAST, DERIVED)
        yield url, market


@pytest.fixture
def env(history: tuple[str, object], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url, market = history
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    monkeypatch.setenv("COINMARKET_TICKERS", ",".join(market.tickers))
    yield url


def _rerun_derived(url: str, instance: DagsterInstance, **overrides: object) -> str:
    """Empty the derived tables, then compute them again in one run; returns the run id."""
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE " + ", ".join(DERIVED))
    result = materialize(
        assets=list(defs.assets),
        selection=DERIVED,
        resources={**defs.resources, "pipeline_settings": PipelineSettingsResource(**overrides)},
        tags=partition_range_tags(RUN_FIRST, LAST),
        instance=instance,
    )
    return result.run_id


def _read_lines(instance: DagsterInstance, run_id: str, step: str) -> list[str]:
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if entry.step_key == step and entry.user_message.startswith("event=table_read")
    ]


@pytest.mark.parametrize("batch_coins", [1, 7])
def test_any_batch_size_stores_the_same_rows_as_one_batch(env: str, batch_coins: int):
    one_batch = {table: dump_table(env, table) for table in DERIVED}
    assert all(one_batch.values())
    instance = DagsterInstance.ephemeral()
    run_id = _rerun_derived(env, instance, batch_coins=batch_coins)
    assert {table: dump_table(env, table) for table in DERIVED} == one_batch
    # The coins really were read in batches of the size asked for.
    batches = math.ceil((5 + EXTRA_COINS) / batch_coins)
    for step in ["historical_rolling", "period_returns"]:
        (line,) = _read_lines(instance, run_id, step)
        assert f"batches={batches} " in line, line


def _listing(market_tickers: list[str]) -> pd.DataFrame:
    """A listing of every day: coins ranked by a rotation, so that membership changes daily."""
    days = pd.date_range(RUN_FIRST, LAST)
    rows = []
    for number, day in enumerate(days):
        for position, coin_id in enumerate(_ids(market_tickers)):
            rank = (position + number) % len(market_tickers) + 1
            rows.append((day.date(), coin_id, rank))
    return pd.DataFrame(rows, columns=["trade_date", "coin_id", "rank"])


def _ids(tickers: list[str]) -> list[int]:
    return [coin.coin_id for coin in _market() if coin.ticker in tickers]


def _store_listing(url: str, listing: pd.DataFrame) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO historical_listings (trade_date, coin_id, ticker, coin_name, slug, "
            "rank, price) VALUES (%s, %s, 'T', 'N', 's', %s, 1.0)",
            list(listing.itertuples(index=False, name=None)),
        )


def _expected_ranking(
    returns: list[tuple], listing: pd.DataFrame, size: int, highest_first: bool
) -> list[tuple]:
    """Plain Python: each day's members with a stored return, ordered by return, then ticker,
    then coin id; the first ``size`` of each day."""
    members = {(row.trade_date, row.coin_id) for row in listing.itertuples() if row.rank <= TOP_N}
    by_day: dict[date, list[tuple]] = {}
    for coin_id, ticker, day, value in returns:
        if (day, coin_id) in members:
            by_day.setdefault(day, []).append((coin_id, ticker, value))
    expected = []
    for day in sorted(by_day):
        ordered = sorted(by_day[day], key=lambda r: (-r[2] if highest_first else r[2], r[1], r[0]))
        expected += [(day, rank, *row) for rank, row in enumerate(ordered[:size], start=1)]
    return expected


def test_with_top_n_each_day_ranks_only_that_days_members(env: str, tmp_path: Path):
    tickers = [coin.ticker for coin in _market()]
    listing = _listing(tickers)
    _store_listing(env, listing)
    try:
        _rerun_derived(env, DagsterInstance.ephemeral(), tickers=f"top:{TOP_N}", batch_coins=3)
        with psycopg.connect(env) as conn:
            returns = conn.execute(
                "SELECT coin_id, ticker, trade_date, period_return FROM period_returns"
            ).fetchall()
            stored = {
                table: conn.execute(
                    f"SELECT trade_date, rank, coin_id, ticker, period_return FROM {table} "
                    "ORDER BY trade_date, rank"
                ).fetchall()
                for table in ["top_ranking", "bottom_ranking"]
            }
        size = PipelineSettingsResource().settings.rank_size
        assert stored["top_ranking"] == _expected_ranking(returns, listing, size, True)
        assert stored["bottom_ranking"] == _expected_ranking(returns, listing, size, False)
        # Fewer than rank_size members on some days would hide a filter that does nothing.
        assert len(stored["top_ranking"]) < size * len(pd.date_range(RUN_FIRST, LAST))
    finally:
        with psycopg.connect(env) as conn:
            conn.execute("DELETE FROM historical_listings")


def _candle_values(url: str) -> list[tuple]:
    """The stored candles, but when they were fetched."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT coin_id, trade_date, ticker, open, high, low, close, volume, market_cap, "
            "source FROM historical_trade_data ORDER BY coin_id, trade_date"
        ).fetchall()


def test_candles_fetched_a_coin_at_a_time_are_those_of_one_batch(env: str):
    one_batch = _candle_values(env)
    with psycopg.connect(env) as conn:
        conn.execute("TRUNCATE historical_trade_data")
    result = materialize(
        assets=list(defs.assets),
        selection=["historical_trade_data"],
        resources={**defs.resources, "pipeline_settings": PipelineSettingsResource(batch_coins=1)},
        tags=partition_range_tags(FIRST, LAST),
        instance=DagsterInstance.ephemeral(),
    )
    assert _candle_values(env) == one_batch
    (event, *_) = result.get_asset_materialization_events()
    assert event.materialization.metadata["run_fetch_batches"].value == 5 + EXTRA_COINS
