"""The read views of V0003 and V0004 (latest_market, daily_closes) on a materialized market,
against pandas computations from the stored tables; V0005's latest_context on rows inserted here,
against plain Python; test_universe covers universe_membership."""

from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import psycopg
import pytest

from coinmarket_assets.storage.database import DATABASE_URL_ENV, connect
from coinmarket_assets_tests.conftest import module_database
from coinmarket_assets_tests.dagster_runs import (
    materialize_market,
    read_table,
)
from coinmarket_testkit.synthetic import default_market

FIRST, LAST = "2020-01-01", "2020-07-18"
DELTA, LATE = 104, 105
DELTA_NEWEST = "2020-07-13"  # DELTA's later candles are deleted: its newest day differs


@pytest.fixture(scope="module")
def stored_market(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The default market materialized with two coins per ranking (so some coins are unranked),
    DELTA's last five candles removed and LATE's metadata missing."""
    with module_database(server_url, "coinmarket_views") as url:
        materialize_market(
            url,
            tmp_path_factory.mktemp("cmc"),
            default_market(),
            FIRST,
            LAST,
            COINMARKET_RANK_SIZE="2",
        )
        with psycopg.connect(url) as conn:
            conn.execute(
                "DELETE FROM historical_trade_data WHERE coin_id = %s AND trade_date > %s",
                [DELTA, DELTA_NEWEST],
            )
            conn.execute("DELETE FROM currency_status WHERE coin_id = %s", [LATE])
        yield url


@pytest.fixture
def market_url(stored_market: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(DATABASE_URL_ENV, stored_market)
    return stored_market


def _view(query: str, params: list[object] | None = None) -> pd.DataFrame:
    with connect() as conn:
        cursor = conn.execute(query, params)
        columns = [column.name for column in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def _latest_market_in_pandas() -> pd.DataFrame:
    candles = read_table("historical_trade_data").drop(columns=["source", "fetched_at"])
    newest = candles.sort_values("trade_date").groupby("coin_id").tail(1)
    status = read_table("currency_status")[["coin_id", "ticker", "coin_name", "slug", "rank"]]
    status = status.rename(columns={"ticker": "status_ticker", "rank": "cmc_rank"})
    day = ["coin_id", "trade_date"]
    frame = (
        newest.merge(status, on="coin_id", how="left")
        .merge(read_table("historical_rolling").drop(columns="ticker"), on=day, how="left")
        .merge(read_table("period_returns").drop(columns="ticker"), on=day, how="left")
    )
    for table, column in [
        ("top_ranking", "top_rank"),
        ("bottom_ranking", "bottom_rank"),
        ("historical_listings", "listing_rank"),
    ]:
        ranks = read_table(table)[[*day, "rank"]].rename(columns={"rank": column})
        frame = frame.merge(ranks, on=day, how="left")
    frame["ticker"] = frame["status_ticker"].fillna(frame["ticker"])
    return frame.sort_values("coin_id", ignore_index=True)


def test_latest_market_is_each_coins_newest_candle_with_its_statistics_and_ranks(
    market_url: str,
):
    view = _view("SELECT * FROM latest_market ORDER BY coin_id")
    expected = _latest_market_in_pandas()[list(view.columns)]
    view["trade_date"] = pd.to_datetime(view["trade_date"])
    pd.testing.assert_frame_equal(
        view.astype(object).where(view.notna(), None),
        expected.astype(object).where(expected.notna(), None),
        check_exact=True,
    )
    by_coin = view.set_index("coin_id")
    assert by_coin.loc[DELTA, "trade_date"] == pd.Timestamp(DELTA_NEWEST)
    assert by_coin.loc[LATE, "ticker"] == "LATE" and pd.isna(by_coin.loc[LATE, "coin_name"])
    # Two coins per ranking: on the newest day some coins are in neither.
    assert by_coin["top_rank"].isna().any() and by_coin["top_rank"].notna().any()
    assert by_coin["bottom_rank"].notna().any()


def _closes_pivot() -> pd.DataFrame:
    candles = read_table("historical_trade_data")
    coins = candles.sort_values("trade_date").groupby("coin_id")["ticker"].last()
    order = sorted(coins.index, key=lambda coin_id: (coins[coin_id], coin_id))
    return candles.pivot(index="trade_date", columns="coin_id", values="close")[order]


def test_daily_closes_has_one_row_per_day_with_every_coins_close_or_null(market_url: str):
    view = _view("SELECT * FROM daily_closes ORDER BY trade_date")
    pivot = _closes_pivot()
    assert list(pd.to_datetime(view["trade_date"])) == list(pivot.index)
    assert all(ids == list(pivot.columns) for ids in view["coin_ids"])
    assert all(
        tickers == ["ALPHA", "BETA", "DELTA", "GAMMA", "LATE"] for tickers in view["tickers"]
    )
    expected = [[None if np.isnan(c) else c for c in row] for row in pivot.to_numpy()]
    assert list(view["closes"]) == expected  # exact doubles, NULL where no candle


@pytest.mark.parametrize(
    ("day", "missing"),
    [
        ("2020-01-01", {"LATE"}),  # before LATE's listing
        ("2020-02-11", {"ALPHA", "LATE"}),  # inside ALPHA's gap 2020-02-10..2020-02-12
        ("2020-03-31", {"ALPHA", "LATE"}),  # ALPHA's missing day
        ("2020-04-09", {"LATE"}),
        ("2020-04-10", set()),  # LATE's first candle
        ("2020-07-18", {"DELTA"}),  # after DELTA's newest candle
    ],
)
def test_daily_closes_of_a_day_marks_exactly_the_coins_without_a_candle(
    market_url: str, day: str, missing: set[str]
):
    (row,) = _view("SELECT * FROM daily_closes WHERE trade_date = %s", [day]).itertuples()
    assert {t for t, close in zip(row.tickers, row.closes, strict=True) if close is None} == missing
    expected = _closes_pivot().loc[pd.Timestamp(day)]
    assert [None if np.isnan(c) else c for c in expected] == row.closes


def test_the_views_answer_an_empty_database(database_url: str):
    assert _view("SELECT * FROM latest_market").empty
    assert _view("SELECT * FROM daily_closes").empty
    assert _view("SELECT * FROM universe_membership").empty
    assert _view("SELECT * FROM latest_context").empty


# global_metrics rows: (day, total_market_cap, total_volume_24h, btc_dominance, eth_dominance).
METRICS = [
    (date(2021, 5, 18), 2.41e12, 2.3e11, 42.1, 17.9),
    (date(2021, 5, 20), 2.05e12, 3.1e11, None, 19.2),  # the newest day, without a dominance
    (date(2021, 5, 19), 1.98e12, 4.6e11, 40.3, 18.5),
]
# market_index rows: (day, index_return), days apart and not in order, as a backfill leaves them.
RETURNS = [
    (date(2021, 5, 19), -0.1137),
    (date(2021, 5, 14), 0.0213),
    (date(2021, 5, 17), -0.0412),
    (date(2021, 5, 13), 0.1),
    (date(2021, 5, 18), -0.0581),
]


def _insert_context(metrics: list[tuple], returns: list[tuple[date, float]]) -> None:
    with connect() as conn:
        for day, cap, volume, btc, eth in metrics:
            conn.execute(
                "INSERT INTO global_metrics (trade_date, total_market_cap, total_volume_24h, "
                "btc_dominance, eth_dominance, active_cryptocurrencies) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [day, cap, volume, btc, eth, 10_084],
            )
        for day, index_return in returns:
            conn.execute(
                "INSERT INTO market_index (trade_date, index_return, members, "
                "top_weight_coin_id, top_weight) VALUES (%s, %s, 10, 1, 0.5)",
                [day, index_return],
            )


def _index_level_in_python(returns: list[tuple[date, float]]) -> tuple[date, float]:
    """1000 times (1 + r) multiplied day by day, oldest first, up to the newest day."""
    level = 1.0
    for _, index_return in sorted(returns):
        level *= 1 + index_return
    return max(day for day, _ in returns), 1000 * level


def _latest_context() -> dict[str, object]:
    (row,) = _view("SELECT * FROM latest_context").to_dict("records")
    return {key: None if value is None or value != value else value for key, value in row.items()}


def test_latest_context_is_the_newest_market_day_beside_the_newest_index_level(
    database_url: str,
):
    _insert_context(METRICS, RETURNS)
    newest = max(METRICS)
    index_date, index_level = _index_level_in_python(RETURNS)
    # The newest day's row as stored, its missing dominance included (not an older day's).
    assert _latest_context() == {
        "trade_date": newest[0],
        "total_market_cap": newest[1],
        "total_volume_24h": newest[2],
        "btc_dominance": None,
        "eth_dominance": newest[4],
        "index_date": index_date,
        "index_level": index_level,  # exactly: the same multiplications in the same order
    }
    assert index_date < newest[0]  # the index of 2021-05-20 is not stored: they differ


@pytest.mark.parametrize(
    ("metrics", "returns"), [(METRICS, []), ([], RETURNS)], ids=["metrics only", "index only"]
)
def test_latest_context_has_a_row_when_only_one_side_is_stored(
    database_url: str, metrics: list[tuple], returns: list[tuple[date, float]]
):
    _insert_context(metrics, returns)
    row = _latest_context()
    assert (row["trade_date"] is None) == (not metrics)
    assert (row["index_date"], row["index_level"]) == (
        _index_level_in_python(returns) if returns else (None, None)
    )
    if metrics:
        assert row["total_market_cap"] == max(METRICS)[1]
