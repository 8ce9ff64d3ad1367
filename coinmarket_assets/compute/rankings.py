"""Daily top and bottom rankings of coins by period return."""

import pandas as pd

from coinmarket_assets.storage.tables import TABLES

RANKING_COLUMNS = list(TABLES["top_ranking"].columns)  # bottom_ranking's are the same


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


def ranking_markdown(ranked: pd.DataFrame, day: str, title: str, return_days: int) -> str:
    """The day's ranked coins as a Markdown table: rank, ticker, coin id, return."""
    rows = ranked[ranked["trade_date"] == pd.Timestamp(day)]
    if rows.empty:
        return f"**{title} on {day}**: no coin has a stored return that day."
    lines = [
        f"**{title} on {day}**",
        "",
        f"| rank | ticker | coin id | {return_days}-day return |",
        "|---:|---|---:|---:|",
    ]
    lines += [
        f"| {row.rank} | {row.ticker} | {row.coin_id} | {row.period_return:+.2%} |"
        for row in rows.itertuples(index=False)
    ]
    return "\n".join(lines)
