"""Property-based round trips (hypothesis) through the real database: whatever the values, the
rows come back bit for bit, missing statistics are NULL, never a NaN stored as a number."""

import math
from datetime import date

import pandas as pd
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coinmarket_assets.storage.database import connect
from coinmarket_assets.storage.table_io import read_rows, replace_days
from coinmarket_assets.storage.tables import TABLES

ROLLING = TABLES["historical_rolling"]
FIRST, END = date(2021, 1, 1), date(2021, 3, 1)

statistic = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, 100.0]),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(st.integers(0, 58), st.integers(1, 4), statistic, statistic),
        max_size=60,
        unique_by=lambda r: (r[0], r[1]),
    )
)
def test_statistics_round_trip_exactly_with_nulls_for_missing_values(database_url: str, rows):
    frame = pd.DataFrame(rows, columns=["day", "coin_id", "rsi", "std_dev"], dtype=object)
    frame = pd.DataFrame(
        {
            "coin_id": frame["coin_id"].astype("int64"),
            "ticker": "X",
            "trade_date": pd.Timestamp(FIRST) + pd.to_timedelta(frame["day"].astype(int), unit="D"),
            "rsi": frame["rsi"].astype("float64"),
            "std_dev": frame["std_dev"].astype("float64"),
        }
    ).sort_values(["coin_id", "trade_date"], ignore_index=True)
    with connect() as conn:
        replace_days(conn, ROLLING, frame, FIRST, END, [1, 2, 3, 4])
        loaded = read_rows(conn, ROLLING)
    assert len(loaded) == len(frame)
    for column in ["rsi", "std_dev"]:
        for stored, written in zip(loaded[column], frame[column], strict=True):
            if math.isnan(written):
                assert math.isnan(stored)
            else:
                assert stored == written and math.copysign(1, stored) == math.copysign(1, written)
    with psycopg.connect(database_url) as conn:
        nan_numbers = conn.execute(
            "SELECT count(*) FROM historical_rolling WHERE rsi = 'NaN' OR std_dev = 'NaN'"
        ).fetchone()[0]
        nulls = conn.execute(
            "SELECT count(*) FROM historical_rolling WHERE rsi IS NULL"
        ).fetchone()[0]
    assert nan_numbers == 0
    assert nulls == frame["rsi"].isna().sum()
