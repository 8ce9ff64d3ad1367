"""The six assets materialized together through Dagster on a real PostgreSQL, checked against
independent references computed from the generated source data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coinmarket_assets.resources import PipelineSettingsResource
from coinmarket_assets_tests.dagster_runs import (
    PARTITIONED_ASSETS,
    dump_all,
    failure_messages,
    materialize_days,
    materialize_unpartitioned,
    read_table,
)
from coinmarket_assets_tests.reference import ranking_reference
from coinmarket_assets_tests.table_checks import assert_derived_tables_match_references
from coinmarket_testkit.synthetic import SyntheticMarket

FIRST, LAST = "2020-01-01", "2020-07-18"


@pytest.fixture
def full_history(database_url: str, csv_source: Path) -> str:
    materialize_unpartitioned(["currency_status"])
    materialize_days(FIRST, LAST)
    return database_url


def test_every_table_matches_its_definition(full_history: str, market: SyntheticMarket):
    stored = read_table("historical_trade_data")
    expected_candles = market.candles().sort_values(["coin_id", "trade_date"], ignore_index=True)
    pd.testing.assert_frame_equal(
        stored[expected_candles.columns], expected_candles, check_exact=True, check_dtype=False
    )
    assert set(stored["source"]) == {"csv"}
    assert stored["fetched_at"].notna().all()

    rolling = assert_derived_tables_match_references(FIRST, LAST)
    assert rolling["rsi"].isna().sum() > len(market.coins) * 14  # NULL while windows fill

    status = read_table("currency_status")
    assert list(status["coin_id"]) == [101, 102, 103, 104, 105]
    assert list(status["ticker"]) == market.tickers


def test_rerunning_single_days_leaves_every_table_byte_for_byte_identical(full_history: str):
    before = dump_all(full_history)
    for day in ["2020-01-01", "2020-02-12", "2020-04-10", "2020-07-18"]:
        materialize_days(day, day)
    materialize_unpartitioned(["currency_status"])
    assert dump_all(full_history) == before


@pytest.mark.parametrize("seed", [1, 2])
def test_rerunning_ranges_in_any_order_leaves_every_table_byte_for_byte_identical(
    full_history: str, seed: int
):
    before = dump_all(full_history)
    days = pd.date_range(FIRST, LAST).strftime("%Y-%m-%d")
    rng = np.random.default_rng(seed)
    for _ in range(4):  # overlapping ranges of random length, in random order
        first, last = sorted(rng.choice(len(days), size=2, replace=False))
        materialize_days(days[first], days[last])
    assert dump_all(full_history) == before


def test_a_run_replaces_only_its_days_and_universe(
    full_history: str, monkeypatch: pytest.MonkeyPatch, csv_source: Path
):
    before = {table: read_table(table) for table in PARTITIONED_ASSETS}
    monkeypatch.setenv("COINMARKET_TICKERS", "ALPHA")
    daily = csv_source / "daily"
    for ticker in ["ALPHA", "BETA"]:  # a revision of both coins on every day
        frame = pd.read_csv(daily / f"{ticker}.csv", dtype=str)
        frame["close"] = frame["close"].astype(float).mul(2).map(repr)
        frame.to_csv(daily / f"{ticker}.csv", index=False)
    materialize_days("2020-03-01", "2020-03-03")

    for table in ["historical_trade_data", "historical_rolling", "period_returns"]:
        after = read_table(table)
        assert len(after) == len(before[table]), table
        merged = after.merge(before[table], on=["coin_id", "trade_date"], suffixes=("", "_was"))
        value = {"historical_trade_data": "close", "historical_rolling": "std_dev"}.get(
            table, "period_return"
        )
        changed = merged[merged[value] != merged[f"{value}_was"]].dropna(subset=[value])
        assert set(changed["ticker"]) == {"ALPHA"}, table
        assert set(changed["trade_date"].dt.strftime("%m-%d")) <= {"03-01", "03-02", "03-03"}, table

    # Rankings are replaced per whole day from every coin's stored return.
    def in_run(frame: pd.DataFrame) -> pd.Series:
        return frame["trade_date"].between("2020-03-01", "2020-03-03")

    returns = read_table("period_returns")
    for table, highest_first in [("top_ranking", True), ("bottom_ranking", False)]:
        ranked, was = read_table(table), before[table]
        expected = ranking_reference(returns[in_run(returns)], 5, highest_first)
        assert list(ranked[in_run(ranked)].itertuples(index=False, name=None)) == expected
        pd.testing.assert_frame_equal(
            ranked[~in_run(ranked)].reset_index(drop=True),
            was[~in_run(was)].reset_index(drop=True),
        )


def test_rankings_use_every_coin_with_a_stored_return(full_history: str, monkeypatch):
    monkeypatch.setenv("COINMARKET_TICKERS", "ALPHA")
    ranking = PipelineSettingsResource(rank_size=2)
    materialize_days("2020-06-01", "2020-06-01", ["top_ranking"], {"pipeline_settings": ranking})
    top = read_table("top_ranking")
    day = top[top["trade_date"] == "2020-06-01"]
    returns = read_table("period_returns")
    expected = ranking_reference(returns[returns["trade_date"] == "2020-06-01"], 2, True)
    assert list(day.itertuples(index=False, name=None)) == expected
    assert len(top[top["trade_date"] == "2020-06-02"]) == 5  # other days untouched


def test_unknown_tickers_fail_before_anything_is_written(
    database_url: str, csv_source: Path, monkeypatch
):
    monkeypatch.setenv("COINMARKET_TICKERS", "ALPHA,NOPE,ZZZ")
    result = materialize_days(FIRST, "2020-01-31", raise_on_error=False)
    assert not result.success
    failure = failure_messages(result)
    assert "Unknown tickers (not listed by the source): NOPE, ZZZ" in failure
    assert all(not dump for dump in dump_all(database_url).values())


@pytest.mark.parametrize(
    "tickers",
    [
        "BTC'); DROP TABLE currency_status;--",
        'ALPHA,"BETA"',
        "ALPHA,BETA;DELETE FROM period_returns",
    ],
)
def test_hostile_tickers_are_unknown_tickers_and_touch_nothing(
    full_history: str, monkeypatch: pytest.MonkeyPatch, tickers: str
):
    before = dump_all(full_history)
    monkeypatch.setenv("COINMARKET_TICKERS", tickers)
    result = materialize_days("2020-03-01", "2020-03-02", raise_on_error=False)
    assert not result.success
    assert "Unknown tickers (not listed by the source)" in failure_messages(result)
    assert dump_all(full_history) == before


def test_an_invalid_candle_fails_its_run_and_keeps_the_stored_days(
    full_history: str, csv_source: Path
):
    before = dump_all(full_history)
    path = csv_source / "daily" / "GAMMA.csv"
    path.write_text(path.read_text().replace("\n2020-03-05,", "\n2020-03-05,NaN-ish", 1))
    result = materialize_days("2020-03-01", "2020-03-10", raise_on_error=False)
    assert not result.success
    failure = failure_messages(result)
    assert "GAMMA 2020-03-05: open is not a number" in failure
    assert dump_all(full_history) == before


def test_days_without_candles_materialize_empty(database_url: str, csv_source: Path):
    result = materialize_days("2019-12-20", "2019-12-31")
    assert result.success
    assert all(not dump for dump in dump_all(database_url).values())


def test_materializations_record_row_counts_settings_and_a_preview(
    database_url: str, csv_source: Path, market: SyntheticMarket
):
    january = market.candles()["trade_date"].between("2020-01-01", "2020-01-31")
    result = materialize_days(
        "2020-01-01", "2020-01-31", selection=["historical_listings", "historical_trade_data"]
    )
    events = result.get_asset_materialization_events()
    trades = next(e for e in events if e.asset_key.path == ["historical_trade_data"])
    metadata = trades.materialization.metadata
    assert metadata["run_rows_written"].value == january.sum() == 31 * 4  # LATE not listed yet
    assert metadata["run_days"].value == 31
    assert metadata["run_coins"].value == 5
    assert metadata["settings"].value["tickers"] == "ALPHA,BETA,GAMMA,DELTA,LATE"
    preview = metadata["preview"].value
    assert "coin_id" in preview.splitlines()[0]
    assert "| 2020-01-31   |" in preview
