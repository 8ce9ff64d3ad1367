"""Checks of the stored derived tables against the independent references."""

import pandas as pd

from coinmarket_assets_tests.dagster_runs import read_table
from coinmarket_assets_tests.reference import (
    assert_rolling_matches,
    ranking_reference,
    returns_reference,
    rolling_reference,
)


def assert_derived_tables_match_references(first_day: str, last_day: str) -> pd.DataFrame:
    """Rolling statistics, returns and both rankings of the days, from the stored candles.

    Returns the stored rolling statistics for further checks.
    """
    stored = read_table("historical_trade_data")
    days = pd.date_range(first_day, last_day, freq="D")

    rolling = read_table("historical_rolling").set_index(["coin_id", "trade_date"])
    assert_rolling_matches(rolling, rolling_reference(stored, days))

    returns = read_table("period_returns")
    expected = returns_reference(stored, days, 5)
    assert list(returns.set_index(["coin_id", "trade_date"]).index) == list(expected.index)
    assert (returns["period_return"].to_numpy() == expected["period_return"].to_numpy()).all()

    for table, highest_first in [("top_ranking", True), ("bottom_ranking", False)]:
        ranked = list(read_table(table).itertuples(index=False, name=None))
        assert ranked == ranking_reference(returns, 5, highest_first), table
    return rolling
