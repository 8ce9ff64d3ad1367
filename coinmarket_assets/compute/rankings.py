"""Daily top and bottom rankings of coins by period return."""

from collections.abc import Callable

import pandas as pd

from coinmarket_assets.storage.tables import TABLES

RANKING_COLUMNS = list(TABLES["top_ranking"].columns)  # bottom_ranking's are the same

LEFT_OUT_COLUMNS = ["trade_date", "coin_id", "ticker", "period_return"]
# Which of the (trade_date, coin_id) rows carry an excluded tag that day: a boolean Series on
# the rows' index (storage.tags.carrying on a connection, in the asset).
Carrying = Callable[[pd.DataFrame], pd.Series]


def rank_returns(returns: pd.DataFrame, size: int, *, highest_first: bool) -> pd.DataFrame:
    """The ``size`` highest (or lowest) returns of each day, rank 1 first.

    Ties go to the smaller ticker, then the smaller coin id; a day with fewer coins has fewer rows.
    """
    ordered = _ordered(returns, highest_first)
    return _ranks(ordered.groupby("trade_date", sort=False).head(size))


def rank_eligible(
    returns: pd.DataFrame, size: int, *, highest_first: bool, carrying: Carrying
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rank_returns`` without the coins that ``carrying`` flags on a day, left out of that
    day before the cut (so a day still has ``size`` rows when it can); and the flagged rows that
    the day's ranking would have held without the exclusion (``LEFT_OUT_COLUMNS``)."""
    ordered = _ordered(returns, highest_first).reset_index(drop=True)
    flagged = _flagged(ordered, size, carrying)
    ranked = _ranks(ordered[~flagged].groupby("trade_date", sort=False).head(size))
    would_rank = ordered.groupby("trade_date", sort=False).cumcount() < size
    left_out = ordered.loc[flagged & would_rank, LEFT_OUT_COLUMNS].reset_index(drop=True)
    return ranked, left_out


def _ordered(returns: pd.DataFrame, highest_first: bool) -> pd.DataFrame:
    return returns.sort_values(
        ["trade_date", "period_return", "ticker", "coin_id"],
        ascending=[True, not highest_first, True, True],
        kind="stable",
    )


def _ranks(heads: pd.DataFrame) -> pd.DataFrame:
    ranked = heads.copy()
    ranked["rank"] = ranked.groupby("trade_date", sort=False).cumcount() + 1
    return ranked[RANKING_COLUMNS].reset_index(drop=True)


def _flagged(ordered: pd.DataFrame, size: int, carrying: Carrying) -> pd.Series:
    """Whether ``carrying`` flags each row, False for the rows it was not asked about.

    Only rows that could still be ranked are asked about: first each day's first ``size`` rows;
    then, for a day whose first ``size`` unflagged rows were not all asked, twice as many
    unflagged rows, and so on (on a falling day the excluded coins crowd the top, so the window
    grows rather than asking about every coin of every day).
    """
    flagged = pd.Series(False, index=ordered.index)
    asked = pd.Series(False, index=ordered.index)
    windows: dict[pd.Timestamp, int] = {}  # a day's window, when larger than size
    while True:
        unflagged = ordered[~flagged]
        place = unflagged.groupby("trade_date", sort=False).cumcount()
        limit = unflagged["trade_date"].map(windows).fillna(size)
        heads = unflagged.index[(place < limit).to_numpy()]
        new = heads[~asked[heads].to_numpy()]
        if len(new):
            hits = carrying(ordered.loc[new, ["trade_date", "coin_id"]])
            asked[new] = True
            flagged[new[hits.to_numpy(dtype=bool)]] = True
        top = ordered[~flagged].groupby("trade_date", sort=False).head(size)
        pending = top.index[~asked[top.index].to_numpy()]
        if not len(pending):
            return flagged
        for day in ordered.loc[pending, "trade_date"].unique():
            windows[day] = 2 * windows.get(day, size)


def ranking_markdown(
    ranked: pd.DataFrame,
    day: str,
    title: str,
    return_days: int,
    left_out: pd.DataFrame | None = None,
) -> str:
    """The day's ranked coins as a Markdown table: rank, ticker, coin id, return; then the
    coins that ``left_out`` names that day (left out for an excluded tag)."""
    rows = ranked[ranked["trade_date"] == pd.Timestamp(day)]
    if rows.empty:
        lines = [f"**{title} on {day}**: no coin has a stored return that day."]
    else:
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
    if left_out is not None:
        out = left_out[left_out["trade_date"] == pd.Timestamp(day)]
        if len(out):
            coins = ", ".join(
                f"{row.ticker} (id {row.coin_id}) {row.period_return:+.2%}"
                for row in out.itertuples(index=False)
            )
            lines += ["", f"Left out for an excluded tag: {coins}"]
    return "\n".join(lines)
