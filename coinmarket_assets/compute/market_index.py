"""The market index: a capitalisation-weighted index of the top coins of the day before.

Day D's members are cut from the listing of D - 1 (``trade_date`` below is that listing day):
the coins ranked at most ``index_size`` once coins carrying an excluded tag are left out, each
ranked coin counting only if it has a positive market cap in that listing and a stored close on
D - 1 (positive) and on D. Weights are those market caps over their sum; the day's return is the
weighted sum of the members' close-to-close returns.

Excluded coins are left out before the cut (the index keeps ``index_size`` coins, as index
methodologies do); a missing or zero market cap, a missing close or a zero close on D - 1 is a
gap of the data, left out after it (the next coin does not move up), so without excluded tags
the members are always among the coins ranked 1..``index_size``, as the issue defines them.
"""

import pandas as pd

from coinmarket_assets.storage.tables import TABLES

INDEX_COLUMNS = list(TABLES["market_index"].columns)
# The listing rows the cut needs: ``excluded`` says whether the coin carries an excluded tag.
CUT_COLUMNS = ["trade_date", "coin_id", "rank", "market_cap", "excluded"]
ONE_DAY = pd.Timedelta(days=1)


def ranks_to_read(listing: pd.DataFrame, index_size: int) -> pd.Series:
    """Per listing day, how deep (in rank) its listing must be read for the cut: ``index_size``
    plus the excluded coins among ``listing``'s rows. Once the rows read reach that rank, no
    coin ranked below it can pass the cut (ranks are distinct, as CoinMarketCap's are)."""
    excluded = listing["excluded"].astype(bool).groupby(listing["trade_date"]).sum()
    return (excluded + index_size).astype("int64")


def index_cut(listing: pd.DataFrame, index_size: int) -> pd.DataFrame:
    """The coins of each listing day that pass the cut: not excluded, and ranked at most
    ``index_size`` once the excluded coins ranked above them are not counted. Without excluded
    coins this is ``rank <= index_size``; with them, the ``index_size`` best-ranked others."""
    ordered = listing[CUT_COLUMNS].sort_values(["trade_date", "rank", "coin_id"], kind="stable")
    excluded = ordered["excluded"].astype(bool)
    ahead = excluded.astype("int64").groupby(ordered["trade_date"]).cumsum() - excluded
    # Coins that share a rank: only excluded coins ranked strictly better move them up.
    ahead = ahead.groupby([ordered["trade_date"], ordered["rank"]]).transform("min")
    passes = ~excluded & (ordered["rank"] - ahead <= index_size)
    return ordered.loc[passes, ["trade_date", "coin_id", "rank", "market_cap"]].reset_index(
        drop=True
    )


def index_returns(cut: pd.DataFrame, closes: pd.DataFrame) -> pd.DataFrame:
    """The index's row of each day D = listing day + 1 that has a member (``INDEX_COLUMNS``).

    ``cut``: ``index_cut``'s rows; ``closes``: ``coin_id``, ``trade_date``, ``close``, holding
    at least the cut coins' closes of each listing day and the day after (a repeated row counts
    once). A cut coin is a member
    when its market cap is positive and both closes are stored, the first positive. Ties for the
    top weight go to the smaller coin id.
    """
    closes = closes.drop_duplicates(["coin_id", "trade_date"])
    before = closes.rename(columns={"close": "close_before"})
    after = closes.rename(columns={"close": "close_after"})
    after = after.assign(trade_date=after["trade_date"] - ONE_DAY)
    members = (
        cut[cut["market_cap"] > 0]
        .merge(before, on=["coin_id", "trade_date"])
        .merge(after, on=["coin_id", "trade_date"])
    )
    members = members[members["close_before"] > 0]
    # One order for every sum, so that the same stored rows give the same bits.
    members = members.sort_values(["trade_date", "coin_id"], ignore_index=True)
    day = members["trade_date"]
    weight = members["market_cap"] / members.groupby(day)["market_cap"].transform("sum")
    members = members.assign(
        weight=weight,
        contribution=weight * (members["close_after"] / members["close_before"] - 1.0),
    )
    return _day_rows(members)


def _day_rows(members: pd.DataFrame) -> pd.DataFrame:
    """One row per listing day of ``members`` (weights and contributions), dated the day after."""
    by_day = members.groupby("trade_date", sort=True)
    top = members.sort_values(
        ["trade_date", "weight", "coin_id"], ascending=[True, False, True], kind="stable"
    ).drop_duplicates("trade_date")
    rows = pd.DataFrame(
        {
            "index_return": by_day["contribution"].sum(),
            "members": by_day.size().astype("int64"),
        }
    )
    rows = rows.join(top.set_index("trade_date")[["coin_id", "weight"]])
    rows = rows.rename(columns={"coin_id": "top_weight_coin_id", "weight": "top_weight"})
    rows = rows.reset_index()
    rows["trade_date"] = rows["trade_date"] + ONE_DAY
    return rows.astype({"top_weight_coin_id": "int64", "members": "int64"})[INDEX_COLUMNS]


def market_index(listing: pd.DataFrame, closes: pd.DataFrame, index_size: int) -> pd.DataFrame:
    """``index_returns`` of ``index_cut``: the index rows of the days after ``listing``'s."""
    return index_returns(index_cut(listing, index_size), closes)
