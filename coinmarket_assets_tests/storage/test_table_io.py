from datetime import date

import numpy as np
import pandas as pd
import pytest

from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.table_io import (
    read_rows,
    replace_days,
    replace_days_streamed,
    upsert,
)
from coinmarket_assets.storage.tables import TABLES

TRADES = TABLES["historical_trade_data"]
ROLLING = TABLES["historical_rolling"]


def _candles(coin_id: int, ticker: str, first: str, days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0, 3, (days, 6))
    frame = pd.DataFrame(values, columns=["open", "high", "low", "close", "volume", "market_cap"])
    frame.insert(0, "trade_date", pd.date_range(first, periods=days, freq="D"))
    frame.insert(0, "ticker", ticker)
    frame.insert(0, "coin_id", coin_id)
    return frame.assign(source="test", fetched_at=pd.Timestamp("2021-02-01 12:00", tz="UTC"))


def test_rows_round_trip_bit_for_bit(database_url: str):
    candles = _candles(1, "BTC", "2021-01-01", 30, 1)
    candles.loc[3, "volume"] = 0.0
    candles.loc[4, "close"] = 9.8339696705807e-05
    with connect() as conn:
        replace_days(conn, TRADES, candles, date(2021, 1, 1), date(2021, 1, 31), [1])
        loaded = read_rows(conn, TRADES, date(2021, 1, 1), date(2021, 1, 31))
    pd.testing.assert_frame_equal(loaded, candles, check_exact=True)


def test_nulls_round_trip(database_url: str):
    rolling = pd.DataFrame(
        {
            "coin_id": [1, 1],
            "ticker": ["NAN", "NAN"],  # a ticker that pandas would read as missing
            "trade_date": pd.to_datetime(["2021-01-01", "2021-01-02"]),
            "rsi": [np.nan, 55.5],
            "std_dev": [np.nan, np.nan],
        }
    )
    with connect() as conn:
        replace_days(conn, ROLLING, rolling, date(2021, 1, 1), date(2021, 1, 3), [1])
        loaded = read_rows(conn, ROLLING)
        nulls = conn.execute(
            "SELECT count(*) FROM historical_rolling WHERE std_dev IS NULL"
        ).fetchone()
    pd.testing.assert_frame_equal(loaded, rolling, check_exact=True)
    assert nulls == (2,)


def test_replacing_days_leaves_other_days_and_other_coins_untouched(database_url: str):
    btc = _candles(1, "BTC", "2021-01-01", 10, 1)
    eth = _candles(1027, "ETH", "2021-01-01", 10, 2)
    new_btc = _candles(1, "BTC", "2021-01-04", 3, 3)
    with connect() as conn:
        replace_days(
            conn, TRADES, pd.concat([btc, eth]), date(2021, 1, 1), date(2021, 1, 11), [1, 1027]
        )
        write = replace_days(conn, TRADES, new_btc, date(2021, 1, 4), date(2021, 1, 7), [1])
        loaded = read_rows(conn, TRADES)
    assert (write.replaced, write.revised) == (3, 3)
    expected = pd.concat(
        [btc[~btc["trade_date"].between("2021-01-04", "2021-01-06")], new_btc, eth]
    )
    expected = expected.sort_values(["coin_id", "trade_date"], ignore_index=True)
    pd.testing.assert_frame_equal(loaded, expected, check_exact=True)


def test_an_empty_write_clears_its_days_for_its_coins_in_derived_tables(database_url: str):
    rolling = pd.DataFrame(
        {
            "coin_id": 1,
            "ticker": "BTC",
            "trade_date": pd.date_range("2021-01-01", periods=5, freq="D"),
            "rsi": 50.0,
            "std_dev": 1.0,
        }
    )
    with connect() as conn:
        replace_days(conn, ROLLING, rolling, date(2021, 1, 1), date(2021, 1, 6), [1])
        replace_days(conn, ROLLING, rolling.iloc[0:0], date(2021, 1, 2), date(2021, 1, 3), [1])
        loaded = read_rows(conn, ROLLING)
    assert list(loaded["trade_date"].dt.day) == [1, 3, 4, 5]


def test_a_refetch_that_leaves_out_a_stored_candle_keeps_it_and_counts_it(database_url: str):
    btc = _candles(1, "BTC", "2021-01-01", 5, 1)
    with connect() as conn:
        replace_days(conn, TRADES, btc, date(2021, 1, 1), date(2021, 1, 6), [1])
        write = replace_days(
            conn, TRADES, btc.drop(index=2), date(2021, 1, 1), date(2021, 1, 6), [1]
        )
        loaded = read_rows(conn, TRADES)
    assert (write.replaced, write.revised, write.kept) == (4, 0, 1)
    pd.testing.assert_frame_equal(loaded, btc, check_exact=True)


def test_two_fetched_writes_in_one_transaction_do_not_collide(database_url: str):
    btc = _candles(1, "BTC", "2021-01-01", 5, 1)
    with connect() as conn, conn.transaction():
        read_rows(conn, TRADES)
        replace_days(conn, TRADES, btc, date(2021, 1, 1), date(2021, 1, 6), [1])
        replace_days(conn, TRADES, btc, date(2021, 1, 1), date(2021, 1, 6), [1])
        assert len(read_rows(conn, TRADES)) == 5


def test_a_failing_write_leaves_the_previous_rows(database_url: str):
    btc = _candles(1, "BTC", "2021-01-01", 5, 1)
    duplicated = pd.concat([btc, btc.iloc[[2]]])  # breaks the primary key inside COPY
    with connect() as conn:
        replace_days(conn, TRADES, btc, date(2021, 1, 1), date(2021, 1, 6), [1])
        with pytest.raises(Exception, match="duplicate key"):
            replace_days(conn, TRADES, duplicated, date(2021, 1, 1), date(2021, 1, 6), [1])
        loaded = read_rows(conn, TRADES)
    pd.testing.assert_frame_equal(loaded, btc, check_exact=True)


def test_rows_outside_the_written_days_are_refused(database_url: str):
    btc = _candles(1, "BTC", "2021-01-01", 5, 1)
    with connect() as conn, pytest.raises(ValueError, match="outside the partitions being written"):
        replace_days(conn, TRADES, btc, date(2021, 1, 2), date(2021, 1, 6), [1])


def test_upsert_updates_by_key_and_keeps_other_rows(database_url: str):
    spec = TABLES["currency_status"]
    first = pd.DataFrame(
        {
            "coin_id": [1, 2],
            "ticker": ["BTC", "LTC"],
            "coin_name": ["Bitcoin", "Litecoin"],
            "slug": ["bitcoin", "litecoin"],
            "rank": pd.array([1, None], dtype="Int64"),
            "market_cap": [1e12, 5e9],
            "last_update": pd.to_datetime(["2021-01-02", "2021-01-02"], utc=True),
            "is_active": pd.array([True, False], dtype="boolean"),
            "first_historical_day": pd.to_datetime(["2013-04-28", "2013-04-28"]),
            "last_historical_day": pd.to_datetime(["2021-01-02", "2020-06-30"]),
            "tags": ["mineable;pow", None],
        }
    )
    second = first.iloc[[0]].assign(market_cap=2e12, rank=pd.array([2], dtype="Int64"))
    with connect() as conn:
        upsert(conn, spec, first)
        upsert(conn, spec, second)
        loaded = read_rows(conn, spec)
    assert list(loaded["market_cap"]) == [2e12, 5e9]
    assert list(loaded["rank"].astype(object)) == [2, pd.NA]
    assert loaded.loc[1, "last_update"] == pd.Timestamp("2021-01-02", tz="UTC")
    assert list(loaded["is_active"].astype(object)) == [True, False]
    assert loaded.loc[1, "last_historical_day"] == pd.Timestamp("2020-06-30")


def test_revisions_count_only_stored_rows_whose_values_change(database_url: str):
    btc = _candles(1, "BTC", "2021-01-01", 5, 1)
    revised = btc.copy()
    revised.loc[2, "close"] += 1.0
    revised = revised.assign(fetched_at=pd.Timestamp("2021-03-01", tz="UTC"))  # not a value
    new_day = _candles(1, "BTC", "2021-01-06", 1, 9)
    with connect() as conn:
        first = replace_days(conn, TRADES, btc, date(2021, 1, 1), date(2021, 1, 6), [1])
        again = replace_days(conn, TRADES, btc, date(2021, 1, 1), date(2021, 1, 6), [1])
        changed = replace_days(
            conn, TRADES, pd.concat([revised, new_day]), date(2021, 1, 1), date(2021, 1, 7), [1]
        )
        loaded = read_rows(conn, TRADES)
    assert (first.revised, again.revised, changed.revised) == (0, 0, 1)
    assert loaded.loc[2, "close"] == btc.loc[2, "close"] + 1.0
    assert (loaded["fetched_at"].iloc[:5] == pd.Timestamp("2021-03-01", tz="UTC")).all()


def test_a_streamed_refetch_merges_every_frame_and_inserts_each_frames_lookback(
    database_url: str,
):
    btc, eth = _candles(1, "BTC", "2020-12-25", 12, 1), _candles(2, "ETH", "2020-12-25", 12, 2)
    run_btc = btc.iloc[7:]  # 2021-01-01..05
    stored_eth_lookback = eth.iloc[:3].assign(close=1.0)  # must survive: never replaced
    with connect() as conn:
        replace_days(conn, TRADES, run_btc, date(2021, 1, 1), date(2021, 1, 6), [1, 2])
        replace_days_streamed(
            conn, TRADES, [stored_eth_lookback], date(2020, 12, 25), date(2020, 12, 28), [2]
        )
        revised_btc = run_btc.drop(index=9).copy()  # 2021-01-03 left out: kept
        revised_btc.loc[10, "close"] += 1.0
        frames = [btc.iloc[:7], revised_btc, eth]  # a lookback, a refetch, lookback + days
        write = replace_days_streamed(
            conn, TRADES, frames, date(2021, 1, 1), date(2021, 1, 6), [1, 2], lookback=True
        )
        loaded = read_rows(conn, TRADES)
    assert (write.replaced, write.revised, write.kept) == (4, 1, 1)
    assert (write.written, write.inserted_before) == (4 + 5, 7 + 4)
    expected = pd.concat(
        [btc.iloc[:7], run_btc.loc[[9]], revised_btc, stored_eth_lookback, eth.iloc[3:]]
    )
    expected = expected.sort_values(["coin_id", "trade_date"], ignore_index=True)
    pd.testing.assert_frame_equal(loaded, expected, check_exact=True)
