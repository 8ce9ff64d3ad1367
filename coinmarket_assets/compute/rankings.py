"""Daily top and bottom rankings of coins by period return."""

import pandas as pd

RANKING_COLUMNS = ["trade_date", "rank", "coin_id", "ticker", "period_return"]


def rank_returns(returns: pd.DataFrame, size: int, *, highest_first: bool) -> pd.DataFrame:
    """The ``size`` highest (or lowest) returns of each day, rank 1 first.

    Ties go to the smaller ticker, then the smaller coin id; a day with fewer coins has fewer rows.
    """
    ordered = returns.sort_values(
        ["trade_date", "period_return", "ticker", "coin_id"],
        ascending=[True, not highest_first, True, True],
        kind="stable",
    )
    ranked = ordered.groupby("trade_date", sort=False).head(size).copy()
    ranked["rank"] = ranked.groupby("trade_date", sort=False).cumcount() + 1
    return ranked[RANKING_COLUMNS].reset_index(drop=True)
