import pandas as pd

from coinmarket_assets.compute.rankings import rank_returns
from coinmarket_assets_tests.reference import ranking_reference


def _returns() -> pd.DataFrame:
    day1, day2 = pd.Timestamp("2021-01-01"), pd.Timestamp("2021-01-02")
    rows = [
        (day1, 1, "BTC", 0.10),
        (day1, 2, "ETH", 0.10),  # tie with BTC: ticker decides
        (day1, 9, "AAA", -0.20),
        (day1, 3, "XRP", 0.05),
        (day1, 4, "XRP", 0.05),  # same ticker and return: coin id decides
        (day1, 5, "ADA", -0.20),
        (day2, 1, "BTC", 0.01),  # a day with fewer coins than the ranking size
        (day2, 2, "ETH", -0.03),
    ]
    return pd.DataFrame(rows, columns=["trade_date", "coin_id", "ticker", "period_return"])


def _as_tuples(frame: pd.DataFrame) -> list[tuple]:
    return list(
        frame[["trade_date", "rank", "coin_id", "ticker", "period_return"]].itertuples(
            index=False, name=None
        )
    )


def test_top_ranking_orders_highest_first_with_ticker_then_id_ties():
    ranked = rank_returns(_returns(), 5, highest_first=True)
    assert _as_tuples(ranked) == ranking_reference(_returns(), 5, highest_first=True)
    day1 = ranked[ranked["trade_date"] == "2021-01-01"]
    assert list(day1["ticker"]) == ["BTC", "ETH", "XRP", "XRP", "AAA"]
    assert list(day1["coin_id"])[2:4] == [3, 4]


def test_bottom_ranking_orders_lowest_first():
    ranked = rank_returns(_returns(), 3, highest_first=False)
    assert _as_tuples(ranked) == ranking_reference(_returns(), 3, highest_first=False)
    day1 = ranked[ranked["trade_date"] == "2021-01-01"]
    assert list(day1["ticker"]) == ["AAA", "ADA", "XRP"]


def test_days_with_fewer_coins_get_fewer_rows():
    ranked = rank_returns(_returns(), 5, highest_first=True)
    day2 = ranked[ranked["trade_date"] == "2021-01-02"]
    assert list(day2["rank"]) == [1, 2]


def test_no_returns_give_no_rankings():
    assert rank_returns(_returns().iloc[0:0], 5, highest_first=True).empty
